from django.contrib import admin

from rdv.accounts.models import User


@admin.register(User)
class UserAdmin(admin.ModelAdmin[User]):
    list_display = ("email", "first_name", "last_name", "is_staff", "is_active")
    search_fields = ("email",)
    exclude = ("password",)
