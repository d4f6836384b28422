from django.urls import path

from review import views

urlpatterns = [
    path("", views.inbox, name="review-inbox"),
    path("clusters/<int:cluster_id>/", views.cluster, name="review-cluster"),
    path("clusters/<int:cluster_id>/label/", views.label_cluster, name="review-label-cluster"),
    path("turns/<int:turn_id>/", views.turn, name="review-turn"),
    path("turns/<int:turn_id>/label/", views.label, name="review-label"),
    path("labels/<int:label_id>/undo/", views.undo_label, name="review-undo-label"),
    path("turns/<int:turn_id>/retry-of/", views.label_retry, name="review-label-retry"),
    path("retries/", views.retries, name="review-retries"),
    path("retry-labels/<int:label_id>/undo/", views.undo_retry_label, name="review-undo-retry-label"),
    path("rules/", views.rules, name="review-rules"),
    path("rules/<int:rule_id>/<slug:action>/", views.decide_rule, name="review-decide-rule"),
    path("rule-decisions/<int:decision_id>/undo/", views.undo_rule_decision, name="review-undo-rule-decision"),
    path("concepts/", views.concepts, name="review-concepts"),
    path("concepts/share/", views.share_concept, name="review-share-concept"),
    path("concepts/<int:shared_id>/retire/", views.retire_concept, name="review-retire-concept"),
    path("dashboard/", views.dashboard, name="review-dashboard"),
    path("models/", views.models, name="review-models"),
    path("models/<int:version_id>/activate/", views.activate, name="review-activate"),
    path("jobs/run-cycle/", views.run_cycle, name="review-run-cycle"),
    path("export/slurp.jsonl", views.export, {"fmt": "slurp"}, name="review-export-slurp"),
    path("export/rasa.yml", views.export, {"fmt": "rasa"}, name="review-export-rasa"),
]
