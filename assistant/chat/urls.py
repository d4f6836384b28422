from django.urls import include, path

from assistant.chat import taught, views

urlpatterns = [
    path("", views.chat, name="chat"),
    # What the assistant knows about you: see, delete, export, forget everything.
    path("me/", taught.taught, name="taught"),
    path("me/export.json", taught.export, name="taught-export"),
    path("me/forget-everything/", taught.forget_everything, name="taught-forget-everything"),
    path("me/<slug:kind>/<int:item_id>/forget/", taught.forget_item, name="taught-forget-item"),
    path("me/preference/<int:item_id>/change/", taught.change_preference, name="taught-change-preference"),
    path("me/inferred/<int:item_id>/change/", taught.change_inferred, name="taught-change-inferred"),
    # login, logout (POST), password change: Django's own views and our templates/registration/.
    path("accounts/", include("django.contrib.auth.urls")),
]
