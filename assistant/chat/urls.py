from django.urls import include, path

from assistant.chat import views

urlpatterns = [
    path("", views.chat, name="chat"),
    # login, logout (POST), password change: Django's own views and our templates/registration/.
    path("accounts/", include("django.contrib.auth.urls")),
]
