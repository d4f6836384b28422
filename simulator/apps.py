from django.apps import AppConfig


class SimulatorConfig(AppConfig):
    """A client of the product (`manage.py simulate`); it has no models of its own."""

    name = "simulator"
    verbose_name = "Simulator"
