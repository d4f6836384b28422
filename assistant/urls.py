from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/v1/", include("assistant.api.urls")),
    path("", include("assistant.chat.urls")),
]

# Under /api/ even the errors Django raises before any view answer JSON.
handler400 = "assistant.api.views.bad_request"
handler500 = "assistant.api.views.server_error"
