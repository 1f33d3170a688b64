"""The task worker (placeholder: django_tasks_db's db_worker as it is)."""

from django_tasks_db.management.commands.db_worker import Command as DBWorkerCommand


class Command(DBWorkerCommand):
    pass
