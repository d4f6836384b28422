from assistant.models import Home


def ensure_home(user) -> Home:
    home, _ = Home.objects.get_or_create(owner=user)
    return home
