from django.contrib import admin
from django.templatetags.static import static
from django.urls import include, path
from django.views.generic import RedirectView

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/v1/", include("assistant.api.urls")),
    path("review/", include("review.urls")),
    # Browsers and tools ask for /favicon.ico whatever the page links.
    path("favicon.ico", RedirectView.as_view(url=static("favicon.svg"), permanent=True)),
    path("", include("assistant.chat.urls")),
]

# Under /api/ even the errors Django raises before any view answer JSON.
handler400 = "assistant.api.views.bad_request"
handler500 = "assistant.api.views.server_error"
