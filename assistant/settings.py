"""Settings for teachable-assistant.

Everything is read from the environment with defaults that are safe in production
(DEBUG off) and make a fresh checkout run with nothing installed beyond Python: a SQLite file and
an embedded Redis (assistant/embedded_redis.py) for the channel layer, the cache and the Celery
broker, shared by all of the checkout's processes as a deployment's Redis is. DATABASE_URL and
REDIS_URL switch to a Postgres and a Redis server. Values are validated by system checks in
assistant/checks.py.
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import dj_database_url

from assistant import embedded_redis
from assistant.env import envbool, envfloat, envint, envstr

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(envstr("VAR_DIR", str(BASE_DIR / "var")))
VAR_DIR.mkdir(parents=True, exist_ok=True)

# The development key works only with DEBUG on: a system check (assistant.E010) refuses it otherwise.
DEV_SECRET_KEY = "dev-only-insecure-key-change-me-in-production-0123456789"
SECRET_KEY = envstr("SECRET_KEY", DEV_SECRET_KEY)
# Off unless asked for (`make run` asks): a debug page shows settings and what was posted.
DEBUG = envbool("DEBUG", False)
ALLOWED_HOSTS = [h for h in envstr("ALLOWED_HOSTS", "127.0.0.1,localhost,testserver").split(",") if h]
CSRF_TRUSTED_ORIGINS = [o for o in envstr("CSRF_TRUSTED_ORIGINS", "").split(",") if o]

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    "django_htmx",
    "template_partials",
    "axes",
    "drf_spectacular_sidecar",  # only its static files: Swagger UI for /api/v1/docs
    "assistant",
    "feedback",
    "teaching",
    "learning",
    "simulator",
    "review",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    # Last, as django-axes asks: turns a locked-out login attempt into its 429 answer.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "assistant.urls"
WSGI_APPLICATION = None
ASGI_APPLICATION = "assistant.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Database: DATABASE_URL, else a SQLite file under var/ -------------------
DATABASE_URL = envstr("DATABASE_URL")
# Postgres connections per process are bounded by a connection pool (psycopg_pool): under
# daphne every request runs in a thread of its own, and persistent per-thread connections
# (CONN_MAX_AGE) grew with the load until Postgres refused new ones. A thread borrows a
# connection for one request, one chat turn or one job step and gives it back; when all
# DB_POOL_SIZE are busy the next one waits up to DB_POOL_TIMEOUT seconds (the API then
# answers 503). Size it so that processes x DB_POOL_SIZE stays below max_connections.
DB_POOL_SIZE = envint("DB_POOL_SIZE", 8)
DB_POOL_TIMEOUT = envfloat("DB_POOL_TIMEOUT", 10.0)
if DATABASE_URL:
    DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=0, conn_health_checks=True)}
    if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
        # pg_stat_activity then says which process holds which connection.
        DATABASES["default"].setdefault("OPTIONS", {})["application_name"] = f"assistant pid {os.getpid()}"
        DATABASES["default"]["OPTIONS"]["pool"] = {
            "min_size": 1,
            "max_size": DB_POOL_SIZE,
            "timeout": DB_POOL_TIMEOUT,
        }
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": VAR_DIR / "db.sqlite3",
            # The web server, worker and beat share the file; wait instead of failing.
            "OPTIONS": {"timeout": 20, "transaction_mode": "IMMEDIATE"},
        }
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Redis: channel layer, cache and broker ----------------------------------
# Without REDIS_URL: the checkout's embedded Redis, started on first use; the web process, the
# worker and beat share it, so what a worker does reaches the browser as in production.
REDIS_URL = envstr("REDIS_URL") or embedded_redis.ensure_running(VAR_DIR)
# Options only a TCP connection takes (redis-py refuses them for a unix socket).
_tcp_options = {} if REDIS_URL.startswith("unix://") else {"socket_connect_timeout": 5, "socket_keepalive": True}
CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "assistant.channel_layer.PooledRedisChannelLayer",
        "CONFIG": {
            "hosts": [
                {
                    "address": REDIS_URL,
                    # A consumer waits for its next message with a blocking read of up to 5 s
                    # (channels_redis' brpop_timeout); redis-py 8's default socket timeout is
                    # also 5 s, so a quiet socket's read timed out first and the consumer was
                    # closed (1011). The socket timeout must outlast the blocking read.
                    "socket_timeout": 30,
                    **_tcp_options,
                    "health_check_interval": 30,
                    # Per process; a burst waits up to `timeout` s for one (assistant/channel_layer.py).
                    "max_connections": envint("REDIS_MAX_CONNECTIONS", 100),
                    "timeout": 10,
                }
            ],
            "prefix": envstr("CHANNELS_PREFIX", "asgi"),
        },
    }
}
CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}}
# kombu names a unix socket redis+socket:///path (redis-py and channels take unix://).
_socket = REDIS_URL.removeprefix("unix://") if REDIS_URL.startswith("unix://") else None
CELERY_BROKER_URL = f"redis+socket://{_socket}" if _socket else REDIS_URL
# A message a dead worker had taken is handed out again after this many seconds.
CELERY_BROKER_TRANSPORT_OPTIONS: dict = {"visibility_timeout": envint("BROKER_VISIBILITY_TIMEOUT", 300)}
CELERY_RESULT_BACKEND = None  # durable state lives in learning.Job rows
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_TIME_LIMIT = envint("CELERY_TASK_TIME_LIMIT", 3600)
CELERY_TASK_SOFT_TIME_LIMIT = CELERY_TASK_TIME_LIMIT - 60
CELERY_TASK_ALWAYS_EAGER = envbool("CELERY_TASK_ALWAYS_EAGER", False)
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
# Learning jobs go to their own queue so a long training never delays timers: every task
# named "learning.*" (learning/tasks.py, made with learning.jobs.learning_task).
# The reaper is quick and must not wait behind a long training: it stays on the default queue.
CELERY_TASK_ROUTES = {
    "learning.reap_stale_jobs": {"queue": "celery"},
    "learning.start_learning_cycle": {"queue": "celery"},  # quick: it only queues the cycle's job
    "learning.start_full_nlu_retrain": {"queue": "celery"},  # quick: it only queues the training job
    "learning.*": {"queue": "learning"},
}
# What beat runs. Learning jobs are added here by the issues that bring them.
CELERY_BEAT_SCHEDULE = {
    "ring-due-timers": {"task": "assistant.ring_due_timers", "schedule": 5.0, "options": {"expires": 5}},
    "reap-stale-jobs": {"task": "learning.reap_stale_jobs", "schedule": 60.0, "options": {"expires": 60}},
}
# One learning cycle (learning/cycle.py) every LEARNING_CYCLE_MINUTES; 0 turns the schedule off.
LEARNING_CYCLE_MINUTES = envfloat("LEARNING_CYCLE_MINUTES", 30.0)
if LEARNING_CYCLE_MINUTES > 0:
    CELERY_BEAT_SCHEDULE["learning-cycle"] = {
        "task": "learning.start_learning_cycle",
        "schedule": LEARNING_CYCLE_MINUTES * 60.0,
        "options": {"expires": LEARNING_CYCLE_MINUTES * 60.0},
    }
# A full NLU retrain every NLU_FULL_RETRAIN_DAYS (the cycle's retrains continue the serving version); 0: never.
NLU_FULL_RETRAIN_DAYS = envfloat("NLU_FULL_RETRAIN_DAYS", 7.0)
if NLU_FULL_RETRAIN_DAYS > 0:
    CELERY_BEAT_SCHEDULE["nlu-full-retrain"] = {
        "task": "learning.start_full_nlu_retrain",
        "schedule": NLU_FULL_RETRAIN_DAYS * 86400.0,
        "options": {"expires": 3600.0},
    }
# The worker also imports the learning cycle's own task (beside every app's tasks.py).
CELERY_IMPORTS = ("learning.cycle",)
# Learning jobs survive a dead worker (learning/models.py Job, learning/jobs.py): a running job
# beats every JOB_HEARTBEAT_S; after JOB_STALE_AFTER_S of silence its message may be redelivered
# (acks_late) and the reaper fails it so it can be retried, at most JOB_MAX_ATTEMPTS times.
JOB_HEARTBEAT_S = envfloat("JOB_HEARTBEAT_S", 10.0)
JOB_STALE_AFTER_S = envfloat("JOB_STALE_AFTER_S", 120.0)
JOB_MAX_ATTEMPTS = envint("JOB_MAX_ATTEMPTS", 3)
# One message at a time per worker process: a long training must not hold others back.
CELERY_WORKER_PREFETCH_MULTIPLIER = 1

# --- Auth ---------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]
# Login throttling (django-axes, stored in the database so every process sees it): after
# LOGIN_FAILURE_LIMIT wrong passwords for one user name from one address, that pair is locked
# out for LOGIN_COOLOFF_MINUTES, even with the right password; a success resets the count.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = envint("LOGIN_FAILURE_LIMIT", 10)
AXES_COOLOFF_TIME = timedelta(minutes=envint("LOGIN_COOLOFF_MINUTES", 15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
AXES_VERBOSE = False
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "chat"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = envstr("TIME_ZONE", "UTC")
USE_I18N = False
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = VAR_DIR / "staticfiles"
STATIC_ROOT.mkdir(exist_ok=True)  # WhiteNoise expects it even when serving from the finders
WHITENOISE_USE_FINDERS = True  # serve from static/ without collectstatic

# --- The assistant ----------------------------------------------------------
# Where trained model artifacts are written, one folder per version.
MODEL_DIR = Path(envstr("MODEL_DIR", str(VAR_DIR / "models")))
# Reply streaming pace, in words per second (people speak about 2.5-3).
SPEAKING_RATE_WPS = envfloat("SPEAKING_RATE_WPS", 3.0)
# Utterances longer than this are refused before they reach the pipeline.
MAX_UTTERANCE_CHARS = envint("MAX_UTTERANCE_CHARS", 1000)
# Largest JSON API request body, in bytes; larger ones get a 413.
API_MAX_BODY_BYTES = envint("API_MAX_BODY_BYTES", 64 * 1024)
# With an n-best list, the NLU reads this many of the most confident hypotheses and the reading is chosen
# over hypotheses and intents together (assistant/pipeline/asr.py).
ASR_NBEST_READ = envint("ASR_NBEST_READ", 5)
# Below this NLU confidence the turn is treated as out of scope.
NLU_OOS_THRESHOLD = envfloat("NLU_OOS_THRESHOLD", 0.45)
# A new NLU version is rejected if a validation metric drops by more than this (learning/nlu/gate.py).
NLU_PROMOTION_TOLERANCE = envfloat("NLU_PROMOTION_TOLERANCE", 0.01)
# Web processes `manage.py serve` starts on one listening socket (the Procfile's web line).
WEB_CONCURRENCY = envint("WEB_CONCURRENCY", 1)
# A chat page opened again (a reload, a new tab) goes on with the conversation with a device when
# its last turn is younger than this; after a longer pause a new session starts.
SESSION_RESUME_MINUTES = envfloat("SESSION_RESUME_MINUTES", 30.0)
# Dialogue state (teaching/dialogue.py): a question the assistant asked is answered by the next
# utterance within PENDING_QUESTION_MINUTES; a different request is taken as one (and the question
# dropped) from DIALOGUE_NEW_REQUEST_CONFIDENCE; an answer it cannot use is asked again
# DIALOGUE_MAX_REASKS times. Opening the garage (CONFIRMED_INTENTS) waits for a yes unless the
# request was read with at least CONFIRM_BELOW_CONFIDENCE from the user's own words.
PENDING_QUESTION_MINUTES = envfloat("PENDING_QUESTION_MINUTES", 5.0)
DIALOGUE_NEW_REQUEST_CONFIDENCE = envfloat("DIALOGUE_NEW_REQUEST_CONFIDENCE", 0.7)
DIALOGUE_MAX_REASKS = envint("DIALOGUE_MAX_REASKS", 1)
CONFIRM_BELOW_CONFIDENCE = envfloat("CONFIRM_BELOW_CONFIDENCE", 0.9)
# Taught concepts (teaching/concepts.py): every clause of a definition must be read as something the
# assistant does with at least this NLU confidence; a concept that CONCEPT_GLOBAL_MIN_USERS distinct
# people teach the same way is offered to reviewers as a global default.
CONCEPT_STEP_CONFIDENCE = envfloat("CONCEPT_STEP_CONFIDENCE", 0.6)
CONCEPT_GLOBAL_MIN_USERS = envint("CONCEPT_GLOBAL_MIN_USERS", 3)
# Preference models (learning/preferences.py, served by assistant/skills/liking.py): per user and
# kind, a distribution over values from what they taught (PREFERENCE_TAUGHT_WEIGHT requests' worth),
# asked for, corrected an underspecified request to, and let play, each piece of evidence halved every
# half-life (chosen among PREFERENCE_HALF_LIVES_DAYS on held-out requests), over a global prior of
# strength chosen among PREFERENCE_PRIOR_STRENGTHS. The prior counts a value only when
# PREFERENCE_PRIOR_MIN_USERS distinct people like it most. An inferred value is used when its
# probability is at least PREFERENCE_INFERRED_MIN_PROBABILITY; the prior alone (for someone the model
# knows nothing about) when at least PREFERENCE_PRIOR_MIN_PROBABILITY of people agree (else a two-valued
# kind such as units would follow a coin flip that changes by the day).
PREFERENCE_TAUGHT_WEIGHT = envfloat("PREFERENCE_TAUGHT_WEIGHT", 5.0)
PREFERENCE_HALF_LIVES_DAYS = (3.0, 7.0, 14.0, 30.0)
PREFERENCE_PRIOR_STRENGTHS = (0.5, 1.0, 2.0)
PREFERENCE_PRIOR_MIN_USERS = envint("PREFERENCE_PRIOR_MIN_USERS", 3)
PREFERENCE_INFERRED_MIN_PROBABILITY = envfloat("PREFERENCE_INFERRED_MIN_PROBABILITY", 0.5)
PREFERENCE_PRIOR_MIN_PROBABILITY = envfloat("PREFERENCE_PRIOR_MIN_PROBABILITY", 0.67)
# A candidate is refused when it predicts held-out requests worse than the active version by more than this.
PREFERENCE_PROMOTION_TOLERANCE = envfloat("PREFERENCE_PROMOTION_TOLERANCE", 0.02)
# Staff review (review/): members of REVIEWERS_GROUP may review as staff do; the inbox lists turns the
# defect model scores REVIEW_DEFECT_AT or more.
REVIEWERS_GROUP = envstr("REVIEWERS_GROUP", "reviewers")
REVIEW_DEFECT_AT = envfloat("REVIEW_DEFECT_AT", 0.5)
# Its clusters (learning/clusters.py): the likely defects of the last REVIEW_CLUSTER_DAYS, a wording joining
# a cluster at MiniLM cosine REVIEW_CLUSTER_SIMILARITY or more (or spelt almost as its first wording); the trend compares the last
# REVIEW_TREND_DAYS with the days before.
REVIEW_CLUSTER_DAYS = envint("REVIEW_CLUSTER_DAYS", 30)
REVIEW_CLUSTER_SIMILARITY = envfloat("REVIEW_CLUSTER_SIMILARITY", 0.8)
REVIEW_CLUSTER_SPELLING = envfloat("REVIEW_CLUSTER_SPELLING", 90.0)  # rapidfuzz ratio, 0-100: typos of one wording
REVIEW_TREND_DAYS = envint("REVIEW_TREND_DAYS", 7)
# Failure points (learning/failure_points.py): the model learns from, and stores its point on, the turns the
# defect model scores FAILURE_POINT_MIN_DEFECT or more in the last FAILURE_POINT_DAYS; a new version is refused
# when it is less accurate than the active one on the same held-out labels by more than the tolerance.
FAILURE_POINT_MIN_DEFECT = envfloat("FAILURE_POINT_MIN_DEFECT", 0.5)
FAILURE_POINT_DAYS = envint("FAILURE_POINT_DAYS", 30)
FAILURE_POINT_PROMOTION_TOLERANCE = envfloat("FAILURE_POINT_PROMOTION_TOLERANCE", 0.02)
# Threads per web process that run chat turns (assistant/pipeline/threads.py); each holds at
# most one database connection.
TURN_THREADS = envint("TURN_THREADS", 4)
# How long a process serves its loaded model (and its cached experiments) before asking the
# database again whether a newer version was promoted: a promotion reaches every process
# within this many seconds, and a turn costs no registry query in between (assistant/registry.py).
MODEL_RECHECK_SECONDS = envfloat("MODEL_RECHECK_SECONDS", 2.0)
# Threads torch may use for one forward pass.
TORCH_THREADS = envint("TORCH_THREADS", 1)
# Public NLU data used by tests, benchmarks and the simulator (never copied in).
SHARED_DATA_DIR = Path(envstr("SHARED_DATA_DIR", str(BASE_DIR.parent / "shared" / "data")))
# What the product's best NLU learns beside the seed utterances (learning/nlu/service.py, recipe "best"):
# SLURP's train and devel sentences and HWU64, never SLURP's test split (files with a `split` field give
# their devel rows only). Paths separated by ":"; empty: the seed alone. A missing file is skipped, said.
NLU_PUBLIC_DATA = [
    Path(p)
    for p in envstr(
        "NLU_PUBLIC_DATA",
        ":".join(
            str(SHARED_DATA_DIR / name)
            for name in ("slurp/train_labeled.jsonl", "hwu64/annotated.jsonl", "slurp/annotated_devel_test.jsonl")
        ),
    ).split(":")
    if p.strip()
]
# The best NLU also trains on a mistyped copy (one keyboard error: assistant/nlu/typos.py) of this fraction
# of its examples, so that typed requests with a typo are still understood.
NLU_TYPO_FRACTION = envfloat("NLU_TYPO_FRACTION", 0.2)
# Labels generated from feedback (learning/generated_labels.py): a try counts as failed from this P(defect),
# as gone well up to that one; the labels of this many days of turns are recomputed each cycle; the NLU
# trains on those at least this confident, and on at most so many went-well readings per intent.
GENERATED_LABEL_MIN_DEFECT = envfloat("GENERATED_LABEL_MIN_DEFECT", 0.5)
GENERATED_LABEL_MAX_SUCCESS_DEFECT = envfloat("GENERATED_LABEL_MAX_SUCCESS_DEFECT", 0.2)
GENERATED_LABEL_DAYS = envint("GENERATED_LABEL_DAYS", 30)
GENERATED_LABEL_MIN_CONFIDENCE = envfloat("GENERATED_LABEL_MIN_CONFIDENCE", 0.3)
GENERATED_SUCCESS_PER_INTENT = envint("GENERATED_SUCCESS_PER_INTENT", 50)
# The learning cycle retrains the NLU when the labels from feedback hold at least this many the serving
# version was not trained on (or any new reviewer's label, or other data changed).
NLU_RETRAIN_MIN_NEW_LABELS = envint("NLU_RETRAIN_MIN_NEW_LABELS", 25)
# The NLU's promotion gate reads at most this many requests that recently went well with the candidate and the
# serving version, and refuses a candidate that understands fewer of them (learning/nlu/gate.py).
NLU_WORKS_SET_SIZE = envint("NLU_WORKS_SET_SIZE", 500)
# The architecture of the best NLU: "joint" (fine-tuned MiniLM, early exit) or "heads" (frozen MiniLM).
NLU_BEST_ARCHITECTURE = envstr("NLU_BEST_ARCHITECTURE", "joint")
# Dotted path of the weather provider class (assistant/world/weather.py); offline by default.
WEATHER_PROVIDER = envstr("WEATHER_PROVIDER", "assistant.world.weather.OfflineWeatherProvider")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": envstr("LOG_LEVEL", "INFO")},
    "loggers": {
        "daphne": {"level": "WARNING"},
        "httpx": {"level": "WARNING"},
        # Beat sends the timer check every 5 s and the worker ran it: three lines each time at INFO
        # drowned everything else. Failures are still logged (celery.app.trace, at ERROR); finished
        # learning jobs say so themselves (learning/jobs.py).
        "celery.beat": {"level": "WARNING"},
        "celery.worker.strategy": {"level": "WARNING"},
        "celery.app.trace": {"level": "WARNING"},
    },
}

# Transformers must never reach a hub: weights come from the installed package.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# Rephrase detection (learning/rephrases.py): consecutive turns of a user closer than this many
# seconds are candidates; pairs scoring at least the threshold are stored as Rephrase rows.
REPHRASE_MAX_GAP_S = envfloat("REPHRASE_MAX_GAP_S", 45.0)
# How many earlier turns a turn may rephrase: usually the one just before, but requests can interleave (two
# devices, a quick aside) and the retry then follows an unrelated turn.
REPHRASE_LOOKBACK = envint("REPHRASE_LOOKBACK", 3)
REPHRASE_THRESHOLD = envfloat("REPHRASE_THRESHOLD", 0.5)
# A trained rephrase detector is refused when its held-out F1 is this much below the active trained version's.
REPHRASE_PROMOTION_TOLERANCE = envfloat("REPHRASE_PROMOTION_TOLERANCE", 0.01)
# Share of replies that end with "Did I answer your question?" (assistant/pipeline/turn.py); the
# answers are the unbiased labels the defect model is calibrated on (learning/defects.py).
SURVEY_RATE = envfloat("SURVEY_RATE", 0.05)
# Teachable moments (assistant/pipeline/prompts.py) also ask it: a rewrite fired, or the NLU acted below
# PROMPT_BELOW_CONFIDENCE, or the user repeated themselves. Whatever the reason, a user is asked at most
# once per PROMPT_MIN_GAP_TURNS turns (34: under 3 prompts per 100 turns).
PROMPT_BELOW_CONFIDENCE = envfloat("PROMPT_BELOW_CONFIDENCE", 0.6)
PROMPT_MIN_GAP_TURNS = envint("PROMPT_MIN_GAP_TURNS", 34)
# Rewrite mining (learning/mining.py): a global rule needs chains of MINE_MIN_USERS distinct people;
# a personal one MINE_PERSONAL_MIN_SUPPORT of the user's own. The source must succeed by itself less
# than MINE_MAX_SOURCE_SUCCESS of the time, the target at least MINE_MIN_TARGET_SUCCESS; a rule is
# kept from MINE_MIN_PROBABILITY (the chance that the person ends up served by the target) and is
# active from MINE_ACTIVE_PROBABILITY (below that, proposed for staff to approve).
MINE_MIN_USERS = envint("MINE_MIN_USERS", 3)
MINE_PERSONAL_MIN_SUPPORT = envint("MINE_PERSONAL_MIN_SUPPORT", 2)
MINE_MAX_SOURCE_SUCCESS = envfloat("MINE_MAX_SOURCE_SUCCESS", 0.5)
MINE_MIN_TARGET_SUCCESS = envfloat("MINE_MIN_TARGET_SUCCESS", 0.6)
MINE_MIN_PROBABILITY = envfloat("MINE_MIN_PROBABILITY", 0.5)
MINE_ACTIVE_PROBABILITY = envfloat("MINE_ACTIVE_PROBABILITY", 0.6)
# Past MINE_ROWS_PER_SHARD rephrased-into-or-from occurrences, mining splits the graph's components into
# up to MINE_SHARDS shards, each a job for any learning worker (learning/mining.py); below it one
# process mines faster than writing the shards out would take.
MINE_SHARDS = envint("MINE_SHARDS", 4)
MINE_ROWS_PER_SHARD = envint("MINE_ROWS_PER_SHARD", 100_000)
# A rewritten turn counts this much as evidence (the learners discount what rewrites produced).
REWRITE_EVIDENCE_WEIGHT = envfloat("REWRITE_EVIDENCE_WEIGHT", 0.2)
# A rule with at least REWRITE_MIN_OUTCOMES outcomes retires when the 5% quantile of its win
# rate's Beta posterior falls below REWRITE_RETIRE_BELOW.
REWRITE_RETIRE_BELOW = envfloat("REWRITE_RETIRE_BELOW", 0.3)
REWRITE_MIN_OUTCOMES = envfloat("REWRITE_MIN_OUTCOMES", 3.0)
# Online rewriting (assistant/rewrite/online.py) considers turns out of scope or below this NLU confidence.
ONLINE_REWRITE_BELOW = envfloat("ONLINE_REWRITE_BELOW", 0.6)
# Its ranker fires only above the score where the top candidate was right this often on held-out rephrases.
ONLINE_REWRITE_PRECISION = envfloat("ONLINE_REWRITE_PRECISION", 0.93)
# The fire model (which turns to rewrite, confident ones too) fires only from the probability where its
# held-out fires were right this often, counted over at least ONLINE_FIRE_MIN_FIRES of them: a wrong
# fire on a turn that would have gone well is a loss, so it is held to a stricter bar than the ranker.
ONLINE_FIRE_PRECISION = envfloat("ONLINE_FIRE_PRECISION", 0.95)
ONLINE_FIRE_MIN_FIRES = envint("ONLINE_FIRE_MIN_FIRES", 100)
# A new defect model is rejected if its held-out log loss is worse than the active one's by more than this.
DEFECT_PROMOTION_TOLERANCE = envfloat("DEFECT_PROMOTION_TOLERANCE", 0.01)
