from django.urls import path

from review import views

urlpatterns = [
    path("", views.inbox, name="review-inbox"),
    path("turns/<int:turn_id>/", views.turn, name="review-turn"),
]
