"""The tables, as SQLAlchemy Core metadata.

Conventions: integer surrogate keys, timestamps as UTC float seconds (cheap to
compare and index on both SQLite and PostgreSQL), JSON payloads in JSON
columns that are never sorted or counted over.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)

# BigInteger ids on PostgreSQL; plain INTEGER PRIMARY KEY (the rowid) on SQLite.
Id = BigInteger().with_variant(Integer(), "sqlite")

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

users = Table(
    "users",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("username", String(200), nullable=False, unique=True),
    Column("role", String(20), nullable=False),
    Column("password_hash", String(300)),
    Column("active", Boolean, nullable=False, server_default=text("true")),
    Column("created_at", Float, nullable=False),
    # NFKC + casefold of the username: one account per name however it is
    # spelled (see assay.security.normalize_username). Filled by the workspace.
    Column("username_key", String(200)),
    CheckConstraint("role IN ('admin', 'reviewer', 'annotator')", name="role"),
)
Index("uq_users_username_key", users.c.username_key, unique=True)

tokens = Table(
    "tokens",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("user_id", Id, ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("name", String(200)),
    Column("created_at", Float, nullable=False),
    # 'api' (made by an admin or the CLI; expires only if asked) or 'session'
    # (a password login; expires after ASSAY_TOKEN_TTL_DAYS).
    Column("kind", String(10), nullable=False, server_default=text("'api'")),
    Column("expires_at", Float),
    Column("last_used_at", Float),  # to the minute: written at most once a minute
    Column("revoked_at", Float),
)

datasets = Table(
    "datasets",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("name", String(200), nullable=False, unique=True),
    Column("created_at", Float, nullable=False),
)

items = Table(
    "items",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("dataset_id", Id, ForeignKey("datasets.id", ondelete="CASCADE"), nullable=False),
    Column("content_hash", String(64), nullable=False),
    Column("kind", String(10), nullable=False),
    Column("text", Text),
    Column("blob", String(200)),  # key in the blob store, for images
    Column("media_type", String(100)),
    Column("source_uri", Text),
    Column("meta", JSON),
    Column("source", Text),
    Column("license", Text),
    Column("consent", Text),
    Column("import_id", Id, ForeignKey("imports.id")),
    Column("created_at", Float, nullable=False),
    UniqueConstraint("dataset_id", "content_hash"),
    CheckConstraint("kind IN ('text', 'image')", name="kind"),
)
Index("ix_items_import_id", items.c.import_id)
Index("ix_items_dataset_id", items.c.dataset_id, items.c.id)
# which kinds of item a dataset holds: one index seek per kind (assay.engine.datasets.item_kinds)
Index("ix_items_dataset_kind", items.c.dataset_id, items.c.kind)

imports = Table(
    "imports",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("dataset_id", Id, ForeignKey("datasets.id", ondelete="CASCADE"), nullable=False),
    Column("source_uri", Text),
    Column("source", Text),
    Column("license", Text),
    Column("consent", Text),
    Column("added", Integer, nullable=False, server_default=text("0")),
    Column("skipped", Integer, nullable=False, server_default=text("0")),
    Column("created_at", Float, nullable=False),
)

projects = Table(
    "projects",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("name", String(200), nullable=False, unique=True),
    Column("dataset_id", Id, ForeignKey("datasets.id"), nullable=False),
    Column("schema_kind", String(30), nullable=False),
    Column("schema_spec", JSON, nullable=False),
    Column("overlap", Integer, nullable=False),
    Column("lease_seconds", Integer, nullable=False),
    Column("show_fields", JSON, nullable=False),
    Column("created_at", Float, nullable=False),
    # Adaptive redundancy (None = off: every item gets ``overlap`` answers).
    Column("target_confidence", Float),
    # ML loop: keep target_confidence at what matches a k-vote majority (k), or None
    Column("target_match", Integer),
    Column("max_answers", Integer),
    # Gold questions (see assay.engine.gold): the share of an annotator's tasks that
    # are hidden checks (NULL = the default, 5 %), and the bar below which an
    # annotator is paused (NULL = never pause) once they answered at least
    # ``gold_min_answers`` checks.
    Column("gold_rate", Float),
    Column("gold_min_accuracy", Float),
    Column("gold_min_answers", Integer),
    # the kind's score (assay.kinds: span / shape F1) at which a gold answer counts right (NULL = 0.8)
    Column("gold_min_score", Float),
    # Machine learning in the loop (see assay.learn.step): the embedding space the
    # in-loop model reads (NULL = off), the accuracy auto-labels must meet
    # (NULL = no auto-labels) and the share of auto-labels audited by people.
    Column("ml_space", String(128)),
    Column("auto_label_target", Float),
    Column("audit_rate", Float),
    # Bring your own model: a Label Studio compatible ML backend (see assay.learn.ml_backend)
    Column("ml_backend_url", Text),
    # Qualification exam (see assay.engine.exam): items per attempt (NULL = no
    # exam), share right to pass (NULL = 0.8), attempts after a fail (NULL = 1).
    Column("exam_size", Integer),
    Column("exam_pass", Float),
    Column("exam_retries", Integer),
    # Teaching by nuance (see assay.engine.teach): the skill on a nuance below
    # which an annotator is taught it (NULL = off), the share of next tasks that
    # are teaching items while a need is open (NULL = 0.2), and teaching items
    # per need (NULL = 3).
    Column("teach_bar", Float),
    Column("teach_rate", Float),
    Column("teach_items", Integer),
    # Skill-aware routing (see assay.engine.handout): 'off' or 'skill', and the
    # share of routed hand-outs that take a random candidate (NULL = 0.1).
    Column("routing", String(10), nullable=False, server_default=text("'off'")),
    Column("routing_random_share", Float),
    CheckConstraint("overlap >= 1", name="overlap"),
)

members = Table(
    "members",
    metadata,
    Column("project_id", Id, ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True),
    Column("user_id", Id, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("created_at", Float, nullable=False),
)

# A task is one item inside one project. ``open_slots`` is how many more
# leases may be handed out: overlap - answers - live leases. It never goes
# below zero (CHECK), which is what makes over-assignment impossible.
tasks = Table(
    "tasks",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("project_id", Id, ForeignKey("projects.id", ondelete="CASCADE"), nullable=False),
    Column("item_id", Id, ForeignKey("items.id", ondelete="CASCADE"), nullable=False),
    Column("priority", Float, nullable=False, server_default=text("0")),
    # A person's priority for the task (Workspace.prioritize, through
    # assay.engine.ledger): the model's priorities never put it lower. NULL: none.
    Column("pinned_priority", Float, nullable=True),
    Column("needed", Integer, nullable=False),
    Column("answer_count", Integer, nullable=False, server_default=text("0")),
    Column("open_slots", Integer, nullable=False),
    # A gold task is handed out by assay.engine.gold to every annotator once, never by
    # the pool: its open_slots stay 0 and ``needed`` follows its answers.
    Column("is_gold", Boolean, nullable=False, server_default=text("false")),
    # Adaptive redundancy stops this item at this confidence instead of the
    # project's target_confidence (None: the project's).
    Column("target", Float, nullable=True),
    # The task's item's window of ids (store.engine.SHUFFLE_WINDOW) plus, in a
    # project with gold, a random place in it. The pool is handed out by
    # (priority, shuffle_key, id), so there the ids an annotator sees come in
    # no order and a gold task (drawn from the same window) never stands out.
    Column("shuffle_key", BigInteger, nullable=False, server_default=text("0")),
    UniqueConstraint("project_id", "item_id"),
    CheckConstraint("open_slots >= 0", name="open_slots"),
    CheckConstraint("answer_count <= needed", name="answer_count"),
)
# The hand-out index: only tasks with room are in it, so "next" stays an
# index probe however many tasks are done.
Index(
    "ix_tasks_open",
    tasks.c.project_id,
    tasks.c.priority.desc(),
    tasks.c.shuffle_key,
    tasks.c.id,
    sqlite_where=tasks.c.open_slots > 0,
    postgresql_where=tasks.c.open_slots > 0,
)

Index(
    "ix_tasks_gold",
    tasks.c.project_id,
    tasks.c.shuffle_key,
    sqlite_where=tasks.c.is_gold,
    postgresql_where=tasks.c.is_gold,
)

leases = Table(
    "leases",
    metadata,
    Column("task_id", Id, ForeignKey("tasks.id", ondelete="CASCADE"), primary_key=True),
    Column("annotator_id", Id, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("project_id", Id, nullable=False),
    Column("expires_at", Float, nullable=False),
    Column("created_at", Float, nullable=False),
)
Index("ix_leases_expires_at", leases.c.expires_at)
Index("ix_leases_annotator", leases.c.annotator_id, leases.c.project_id)

answers = Table(
    "answers",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("task_id", Id, ForeignKey("tasks.id", ondelete="CASCADE"), nullable=False),
    Column("project_id", Id, nullable=False),
    Column("item_id", Id, nullable=False),
    Column("annotator_id", Id, ForeignKey("users.id"), nullable=False),
    Column("label", JSON, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("lead_time", Float),  # seconds between lease and answer
    # Pre-labels: the model's suggestion shown with the task (NULL = none shown)
    # and whether the answer took it as it was, so anchoring can be measured.
    Column("suggestion", JSON),
    Column("suggestion_accepted", Boolean),
    UniqueConstraint("task_id", "annotator_id"),
    sqlite_autoincrement=True,  # undo deletes answers; their ids must never come back
)
Index("ix_answers_project_id", answers.c.project_id, answers.c.id)
Index("ix_answers_annotator", answers.c.annotator_id, answers.c.project_id, answers.c.id)
# a project's answers since a time (the live progress charts: assay.engine.progress_series)
Index("ix_answers_project_created", answers.c.project_id, answers.c.created_at)

skips = Table(
    "skips",
    metadata,
    Column("task_id", Id, ForeignKey("tasks.id", ondelete="CASCADE"), primary_key=True),
    Column("annotator_id", Id, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("project_id", Id, nullable=False),
    Column("created_at", Float, nullable=False),
)
Index("ix_skips_annotator", skips.c.annotator_id, skips.c.project_id)

# Adaptive redundancy (see assay.engine.redundancy). One row per item of a project
# that has answers: the running posterior over the project's classes (log,
# unnormalised), its argmax and confidence. ``status``: 'open' (more answers
# wanted or pending), 'resolved' (confidence >= target), 'review' (max
# answers reached below target: the reviewer queue).
item_consensus = Table(
    "item_consensus",
    metadata,
    Column("project_id", Id, ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True),
    Column("item_id", Id, ForeignKey("items.id", ondelete="CASCADE"), primary_key=True),
    Column("label", JSON),
    Column("confidence", Float, nullable=False),
    Column("log_post", JSON, nullable=False),
    Column("answers", Integer, nullable=False),
    Column("status", String(10), nullable=False),
    Column("updated_at", Float, nullable=False),
    CheckConstraint("status IN ('open', 'resolved', 'review')", name="status"),
)
Index("ix_item_consensus_status", item_consensus.c.project_id, item_consensus.c.status, item_consensus.c.item_id)

# The last full re-fit of a project's annotator skills: class prior and the
# confusion matrix a new annotator is assumed to have (the crowd's average).
quality_models = Table(
    "quality_models",
    metadata,
    Column("project_id", Id, ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True),
    Column("method", String(30), nullable=False),
    Column("prior", JSON, nullable=False),
    Column("default_confusion", JSON, nullable=False),
    Column("answers", Integer, nullable=False),
    Column("fitted_at", Float, nullable=False),
)

# Per-annotator confusion matrices (rows = true class) from the last re-fit.
annotator_skills = Table(
    "annotator_skills",
    metadata,
    Column("project_id", Id, ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True),
    Column("annotator_id", Id, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("confusion", JSON, nullable=False),
    Column("accuracy", Float),
    Column("answers", Integer, nullable=False),
)

# Known true labels: imported gold questions (``source`` 'import') and
# reviewers' final decisions ('review'). Both are clamped in re-fits and score
# the annotators who answered the item.
gold = Table(
    "gold",
    metadata,
    Column("project_id", Id, ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True),
    Column("item_id", Id, ForeignKey("items.id", ondelete="CASCADE"), primary_key=True),
    Column("label", JSON, nullable=False),
    Column("source", String(10), nullable=False),
    Column("created_by", Id, ForeignKey("users.id", ondelete="SET NULL")),
    Column("created_at", Float, nullable=False),
    # the edge case the item stands for, why its label is what it is, and items
    # that show the contrast (staff only: gold stays hidden from annotators)
    Column("nuance", String(200)),
    Column("explanation", Text),
    Column("reference_items", JSON),
    # 'check': a hidden gold question; 'exam': an item of the qualification
    # exam (revealed as such to exam takers: never a hidden check nor real work);
    # 'teach': a teaching item (shown openly as practice, its label and
    # explanation after the answer: never a hidden check nor real work)
    Column("purpose", String(10), nullable=False, server_default=text("'check'")),
    CheckConstraint("source IN ('import', 'review')", name="source"),
)

# Qualification exam (assay.engine.exam): each annotator's standing per
# project ('open', 'passed', 'failed' = refused) and the attempts an admin
# granted after a final fail; every attempt (the drawn items, progress, the
# lease on its current question, the score); and the answers given in them,
# which never enter ``answers``.
exam_status = Table(
    "exam_status",
    metadata,
    Column("project_id", Id, ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True),
    Column("annotator_id", Id, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("status", String(10), nullable=False),
    Column("granted", Integer, nullable=False, server_default=text("0")),
    Column("updated_at", Float, nullable=False),
)
exam_attempts = Table(
    "exam_attempts",
    metadata,
    Column("project_id", Id, ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True),
    Column("annotator_id", Id, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("attempt", Integer, primary_key=True, autoincrement=False),
    Column("items", JSON, nullable=False),
    Column("answered", Integer, nullable=False, server_default=text("0")),
    Column("correct", Integer, nullable=False, server_default=text("0")),
    Column("expires_at", Float),
    Column("started_at", Float, nullable=False),
    Column("finished_at", Float),
    Column("score", Float),
    Column("passed", Boolean),
)
exam_answers = Table(
    "exam_answers",
    metadata,
    Column("project_id", Id, ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True),
    Column("annotator_id", Id, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("attempt", Integer, primary_key=True, autoincrement=False),
    Column("item_id", Id, ForeignKey("items.id", ondelete="CASCADE"), primary_key=True),
    Column("label", JSON, nullable=False),
    Column("correct", Boolean, nullable=False),
    Column("created_at", Float, nullable=False),
)

# Teaching by nuance (assay.engine.teach): each weakness found per annotator
# and nuance on the hidden checks (the skill and its 90 % interval then, the
# teaching given, 'open' / 'taught' / 'measured'); and the teaching items
# served (the lease on the one in hand) with their answers, which never enter
# ``answers``.
teach_needs = Table(
    "teach_needs",
    metadata,
    Column("project_id", Id, ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True),
    Column("annotator_id", Id, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("nuance", String(200), primary_key=True),
    Column("status", String(10), nullable=False),
    Column("detected_at", Float, nullable=False),
    Column("checks", Integer, nullable=False),
    Column("skill", Float, nullable=False),
    Column("skill_low", Float, nullable=False),
    Column("skill_high", Float, nullable=False),
    Column("taught", Integer, nullable=False, server_default=text("0")),
    Column("started_at", Float),
    Column("taught_at", Float),
    Column("measured_at", Float),
)
teach_answers = Table(
    "teach_answers",
    metadata,
    Column("project_id", Id, ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True),
    Column("annotator_id", Id, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("item_id", Id, ForeignKey("items.id", ondelete="CASCADE"), primary_key=True),
    Column("nuance", String(200), nullable=False),
    Column("served_at", Float, nullable=False),
    Column("expires_at", Float, nullable=False),
    Column("label", JSON),
    Column("correct", Boolean),
    Column("answered_at", Float),
)

# Each annotator's record on gold, per project, updated with every scored
# answer. ``window_*`` count since the last time an admin lifted a pause; the
# pause rule looks at the window only.
gold_stats = Table(
    "gold_stats",
    metadata,
    Column("project_id", Id, ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True),
    Column("annotator_id", Id, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("answers", Integer, nullable=False, server_default=text("0")),
    Column("correct", Integer, nullable=False, server_default=text("0")),
    Column("window_answers", Integer, nullable=False, server_default=text("0")),
    Column("window_correct", Integer, nullable=False, server_default=text("0")),
    Column("paused", Boolean, nullable=False, server_default=text("false")),
    Column("paused_at", Float),
    Column("lifted_at", Float),
    Column("lifted_by", Id, ForeignKey("users.id", ondelete="SET NULL")),
)

# The append-only record of first answers: the first answer each annotator
# gave to each item of a project with gold (every item, gold or not, so that
# recording costs the same for both) and to reviewed items. Undo never removes
# a row and a re-answer is not recorded, so nobody can probe a right answer
# and rewrite their record; ``gold_stats`` is recounted from these rows joined
# to ``gold`` (against the current gold label).
first_answers = Table(
    "first_answers",
    metadata,
    Column("project_id", Id, ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True),
    Column("item_id", Id, ForeignKey("items.id", ondelete="CASCADE"), primary_key=True),
    Column("annotator_id", Id, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("label", JSON, nullable=False),
    Column("created_at", Float, nullable=False),
)
Index("ix_first_answers_annotator", first_answers.c.project_id, first_answers.c.annotator_id)

# The in-loop model's versions: when each was trained, on how many verified
# labels, its calibration and the auto-label threshold chosen for it.
ml_models = Table(
    "ml_models",
    metadata,
    Column("project_id", Id, ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("trained_at", Float, nullable=False),
    Column("n_train", Integer, nullable=False),
    Column("temperature", Float, nullable=False),
    Column("oof_accuracy", Float),
    Column("threshold", Float),
    Column("auto_state", String(10), nullable=False),
    Column("metrics", JSON),
    CheckConstraint("auto_state IN ('off', 'on', 'stopped')", name="auto_state"),
)

# The latest prediction per item (model version, label, calibrated probabilities).
predictions = Table(
    "predictions",
    metadata,
    Column("project_id", Id, ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True),
    Column("item_id", Id, ForeignKey("items.id", ondelete="CASCADE"), primary_key=True),
    Column("model_version", Integer, nullable=False),
    Column("label", JSON, nullable=False),
    Column("confidence", Float, nullable=False),
    Column("proba", JSON, nullable=False),
)

# Items labeled by the model (no person needed): the label, the model
# version, and whether the item was picked for an audit by people.
auto_labels = Table(
    "auto_labels",
    metadata,
    Column("project_id", Id, ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True),
    Column("item_id", Id, ForeignKey("items.id", ondelete="CASCADE"), primary_key=True),
    Column("label", JSON, nullable=False),
    Column("confidence", Float, nullable=False),
    Column("model_version", Integer, nullable=False),
    Column("audit", Boolean, nullable=False, server_default=text("false")),
    Column("created_at", Float, nullable=False),
)


# Failed password logins per username and per client address (keys are
# hashed): the backoff state that every server process shares.
login_throttle = Table(
    "login_throttle",
    metadata,
    Column("key", String(80), primary_key=True),
    Column("failures", Integer, nullable=False),
    Column("last_failure", Float, nullable=False),
    Column("locked_until", Float, nullable=False),
)

# The audit log: append-only (database triggers refuse UPDATE and DELETE).
# No foreign keys: a record outlives what it names.
audit = Table(
    "audit",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("created_at", Float, nullable=False),
    Column("actor_id", Id),
    Column("actor", String(200)),
    Column("address", String(100)),
    Column("action", String(50), nullable=False),
    Column("target_kind", String(30)),
    Column("target_id", Id),
    Column("target", String(200)),
    Column("details", JSON),
)
Index("ix_audit_action", audit.c.action, audit.c.id)
Index("ix_audit_actor_id", audit.c.actor_id, audit.c.id)
Index("ix_audit_target", audit.c.target_kind, audit.c.target_id, audit.c.id)

# Slices: saved, named sets of a dataset's items (assay.engine.slices). An
# explicit slice lists its items in ``slice_items``; a query slice keeps its
# query (similar-to items or text, k, metadata filters) in ``query`` and is
# evaluated when used.
slices = Table(
    "slices",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("dataset_id", Id, ForeignKey("datasets.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(200), nullable=False),
    Column("kind", String(10), nullable=False),
    Column("query", JSON),
    Column("created_at", Float, nullable=False),
    Column("created_by", String(200)),
    UniqueConstraint("dataset_id", "name"),
    CheckConstraint("kind IN ('items', 'query')", name="kind"),
)
slice_items = Table(
    "slice_items",
    metadata,
    Column("slice_id", Id, ForeignKey("slices.id", ondelete="CASCADE"), primary_key=True),
    Column("item_id", Id, ForeignKey("items.id", ondelete="CASCADE"), primary_key=True),
)

# Tags on items (assay.engine.tags): free words a person puts on items while
# curating ("hard", "blurry", "gold-candidate"). Staff-only: never part of
# what an annotator is served.
item_tags = Table(
    "item_tags",
    metadata,
    Column("item_id", Id, ForeignKey("items.id", ondelete="CASCADE"), primary_key=True),
    Column("tag", String(64), primary_key=True),
    Column("created_by", String(200)),
    Column("created_at", Float, nullable=False),
)
Index("ix_item_tags_tag", item_tags.c.tag, item_tags.c.item_id)
