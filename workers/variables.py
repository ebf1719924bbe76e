"""Every topic, BPMN error code and process variable name the workers use, in one place.

These names are a public API (docs/process-contract.md holds the same table): users write their
own MLC processes against them. Change both together.
"""

from __future__ import annotations

# -- topics -----------------------------------------------------------------------------------
TOPIC_GET_MODEL = "get-model"
TOPIC_TRAIN = "train"
TOPIC_RUN_TEST = "run-test"
TOPIC_COMPARE = "compare"
TOPIC_DEPLOY = "deploy"
TOPIC_SCORE = "score"
TOPIC_DRIFT = "drift"
TOPIC_CREATE_TICKET = "create-ticket"
TOPIC_NOTIFY = "notify"
TOPIC_MONITOR_CHECK = "monitor-check"
TOPIC_MONITOR_RECORD = "monitor-record"
TOPIC_CANARY_PREPARE = "canary-prepare"
TOPIC_CANARY_BASELINE = "canary-baseline"
TOPIC_CANARY_FIGURES = "canary-figures"
TOPIC_CANARY_PROMOTE = "canary-promote"
TOPIC_CANARY_ROLLBACK = "canary-rollback"
TOPIC_SCAN = "scan"

TOPIC_RETRAIN_CLAIM = "retrain-claim"
TOPIC_VALIDATE_DATA = "validate-data"
TOPIC_TRAIN_SUBMIT = "train-submit"
TOPIC_TRAIN_STATUS = "train-status"
TOPIC_RETRAIN_RELEASE = "retrain-release"

BUILTIN_TOPICS: tuple[str, ...] = (
    TOPIC_GET_MODEL,
    TOPIC_TRAIN,
    TOPIC_RUN_TEST,
    TOPIC_COMPARE,
    TOPIC_DEPLOY,
    TOPIC_SCORE,
    TOPIC_DRIFT,
    TOPIC_CREATE_TICKET,
    TOPIC_NOTIFY,
    TOPIC_MONITOR_CHECK,
    TOPIC_MONITOR_RECORD,
    TOPIC_CANARY_PREPARE,
    TOPIC_CANARY_BASELINE,
    TOPIC_CANARY_FIGURES,
    TOPIC_CANARY_PROMOTE,
    TOPIC_CANARY_ROLLBACK,
    TOPIC_SCAN,
    TOPIC_RETRAIN_CLAIM,
    TOPIC_VALIDATE_DATA,
    TOPIC_TRAIN_SUBMIT,
    TOPIC_TRAIN_STATUS,
    TOPIC_RETRAIN_RELEASE,
)

# -- BPMN error codes -------------------------------------------------------------------------
MLC_MODEL_NOT_FOUND = "MLC_MODEL_NOT_FOUND"
MLC_MISSING_TEST_DATA = "MLC_MISSING_TEST_DATA"
MLC_JOB_FAILED = "MLC_JOB_FAILED"
MLC_NO_RUNTIME = "MLC_NO_RUNTIME"
MLC_DEPLOY_FAILED = "MLC_DEPLOY_FAILED"

ERROR_CODES: tuple[str, ...] = (
    MLC_MODEL_NOT_FOUND,
    MLC_MISSING_TEST_DATA,
    MLC_JOB_FAILED,
    MLC_NO_RUNTIME,
    MLC_DEPLOY_FAILED,
)

# Set with every BPMN error so the process can quote it (e.g. in a ticket).
MLC_ERROR_CODE = "MLC_ERROR_CODE"
MLC_ERROR_MESSAGE = "MLC_ERROR_MESSAGE"

# -- model identity (all processes) -----------------------------------------------------------
MODEL_ID = "MODEL_ID"  # registered model name; input also accepts name/version and name@alias
MODEL_VERSION = "MODEL_VERSION"
MODEL_TAG = "MODEL_TAG"  # service tag of the model
MODEL_FLAVOR = "MODEL_FLAVOR"
MODEL_STAGE = "MODEL_STAGE"
TAG = "TAG"  # service tag given to mlc-run-batch-job

# -- get-model --------------------------------------------------------------------------------
LOOKUP = "LOOKUP"  # "batch-deployment": resolve TAG (+ MODEL_STAGE) to the active batch deployment
LOOKUP_BATCH_DEPLOYMENT = "batch-deployment"
TRAIN = "TRAIN"  # booleans from the version tags train, run_test, jira
RUN_TEST = "RUN_TEST"
JIRA = "JIRA"
DMN_KEY = "DMN_KEY"  # version tag dmn
DEFAULT_DMN_KEY = "mlc-test-criteria"
HAS_TEST_DATA = "HAS_TEST_DATA"

# -- train ------------------------------------------------------------------------------------
TRAINING_DATA = "TRAINING_DATA"
PARENT_VERSION = "PARENT_VERSION"
TRAIN_RUN_ID = "TRAIN_RUN_ID"

# -- run-test ---------------------------------------------------------------------------------
INPUT_FILE = "INPUT_FILE"
OUTPUT_FILE = "OUTPUT_FILE"
TASK_TYPE = "TASK_TYPE"  # classification / regression
METRIC_NAMES: tuple[str, ...] = ("accuracy", "precision", "recall", "f1", "roc_auc", "log_loss", "rmse", "mae", "r2")
TEST_METRICS = "TEST_METRICS"  # JSON
TEST_RUN_ID = "TEST_RUN_ID"
TEST_VERDICT = "TEST_VERDICT"  # written by the mlc-test-criteria business rule task

# -- compare ----------------------------------------------------------------------------------
CHAMPION_VERSION = "CHAMPION_VERSION"
CHALLENGER_VERSION = "CHALLENGER_VERSION"
COMPARE_WINNER = "COMPARE_WINNER"  # champion / challenger
COMPARE_RESULTS = "COMPARE_RESULTS"  # JSON
# inputs of the retrain decision
COMPARE_PRIMARY_METRIC = "COMPARE_PRIMARY_METRIC"
COMPARE_IMPROVEMENT = "COMPARE_IMPROVEMENT"  # Double, relative, > 0: the challenger is better
COMPARE_GUARD_LOSSES = "COMPARE_GUARD_LOSSES"  # guard metrics the challenger loses on, comma-separated ("" for none)

# -- deploy -----------------------------------------------------------------------------------
DEFAULT_STAGE = "QA"
TRAFFIC_WEIGHT = "TRAFFIC_WEIGHT"
DEPLOY_SHADOW = "DEPLOY_SHADOW"  # true: a shadow deployment (mirrored traffic, no answers)
DEPLOYMENT_ID = "DEPLOYMENT_ID"
DEPLOY_MODE = "DEPLOY_MODE"  # batch / online
RUNTIME_NAME = "RUNTIME_NAME"
ENDPOINT = "ENDPOINT"

# -- score ------------------------------------------------------------------------------------
ROWS_SCORED = "ROWS_SCORED"
OUTPUT_SHA256 = "OUTPUT_SHA256"

# -- drift ------------------------------------------------------------------------------------
REFERENCE_DATA = "REFERENCE_DATA"
CURRENT_DATA = "CURRENT_DATA"
DRIFT_VERDICT = "DRIFT_VERDICT"  # ok / notify / investigate / retrain (modelops_mlc.jobs.results.VERDICTS)
DRIFT_RESULTS = "DRIFT_RESULTS"  # JSON

PREDICTION_DRIFT = "PREDICTION_DRIFT"  # true: also the drift of the model's outputs (DRIFT_RESULTS.prediction)

# -- mlc-monitor: monitor-check, the mlc-monitor-criteria decision, monitor-record -------------
MONITOR_TRIGGER = "MONITOR_TRIGGER"  # schedule / signal / new-data / webhook / cli
MONITOR_DMN_KEY = "MONITOR_DMN_KEY"  # version tag monitor_dmn
DEFAULT_MONITOR_DMN_KEY = "mlc-monitor-criteria"
HAS_LABELS = "HAS_LABELS"  # CURRENT_DATA carries the target column
MONITOR_MAX_PSI = "MONITOR_MAX_PSI"
MONITOR_MAX_PSI_FEATURE = "MONITOR_MAX_PSI_FEATURE"
MONITOR_DRIFTED_FEATURES = "MONITOR_DRIFTED_FEATURES"
MONITOR_PREDICTION_PSI = "MONITOR_PREDICTION_PSI"
MONITOR_ACCURACY_DROP = "MONITOR_ACCURACY_DROP"  # relative: 0.12 = 12 % below the baseline
MONITOR_FAIRNESS_GAP = "MONITOR_FAIRNESS_GAP"
MONITOR_FIGURES = "MONITOR_FIGURES"  # JSON
MONITOR_SUMMARY = "MONITOR_SUMMARY"  # the figures in one line, for tickets and notifications
MONITOR_VERDICT = "MONITOR_VERDICT"  # ok / notify / investigate / retrain
MONITOR_REASON = "MONITOR_REASON"
MONITOR_RECORD_ID = "MONITOR_RECORD_ID"
MONITOR_RUN_ID = "MONITOR_RUN_ID"  # the MLflow run
MONITOR_SCHEDULE = "MONITOR_SCHEDULE"  # timer cycle of mlc-monitor-schedule (ISO repeat or cron)
RETRAIN_TRIGGER = "RETRAIN_TRIGGER"

# -- mlc-canary-rollout: the canary-* topics and the mlc-canary-slo decision ---------------
CANARY_WEIGHT = "CANARY_WEIGHT"  # percent of the traffic for the canary, default 10
CANARY_WINDOW = "CANARY_WINDOW"  # ISO-8601 duration watched, default PT10M
DEFAULT_CANARY_WINDOW = "PT10M"
CANARY_MAX_ERROR_RATE = "CANARY_MAX_ERROR_RATE"  # SLO overrides; absent: the decision's defaults
CANARY_MAX_P99_MS = "CANARY_MAX_P99_MS"
CANARY_MIN_ACCURACY = "CANARY_MIN_ACCURACY"
CANARY_MIN_REQUESTS = "CANARY_MIN_REQUESTS"
CANARY_BASELINE = "CANARY_BASELINE"  # JSON: the live counters when the window opened
CANARY_FIGURES = "CANARY_FIGURES"  # JSON: the figures of the window
CANARY_REQUESTS = "CANARY_REQUESTS"
CANARY_ERROR_RATE = "CANARY_ERROR_RATE"
CANARY_P99_MS = "CANARY_P99_MS"
CANARY_ACCURACY = "CANARY_ACCURACY"  # null: not yet known (no feedback labels)
CANARY_VERDICT = "CANARY_VERDICT"  # JSON {promote, reason}, from the mlc-canary-slo decision
CANARY_OUTCOME = "CANARY_OUTCOME"  # promoted / rolled-back / failed
CANARY_REASON = "CANARY_REASON"  # why it was rolled back, quoting the figures
RETIRED_VERSION = "RETIRED_VERSION"  # the champion a promotion retired
ROLLED_BACK_TO = "ROLLED_BACK_TO"  # the version(s) serving after a rollback

# -- governance: get-model (tags), mlc-process-selection, scan, reviews -------------------------
BUSINESS_UNIT = "BUSINESS_UNIT"  # tag business_unit (version tag over model tag)
RISK_TIER = "RISK_TIER"  # tag risk_tier: HIGH / MEDIUM / LOW; an input of mlc-test-criteria
FRAMEWORK = "FRAMEWORK"  # tag framework, else the model flavor
GOVERNANCE_LEVEL = "GOVERNANCE_LEVEL"  # tag governance_level: experimental / staging / production
SERVICENOW = "SERVICENOW"  # tag servicenow: review by ServiceNow ticket (JIRA: by Jira ticket)
HAS_MODEL_CARD = "HAS_MODEL_CARD"  # tag mlc.model_card or run artifact model_card.md
SEPARATION_OF_DUTIES = "SEPARATION_OF_DUTIES"  # tag separation_of_duties, default true for production
SUBMITTED_BY = "SUBMITTED_BY"  # who submitted the snapshot (mlc model snapshot, tag submitted_by)
APPROVED_BY = "APPROVED_BY"  # who completed the review (task assignee or ticket actor)
PRODUCTIONIZE_PROCESS = "PRODUCTIONIZE_PROCESS"  # the process key mlc-process-selection chose
PRODUCTIONIZE_RULE = "PRODUCTIONIZE_RULE"  # the rule that chose it
SCAN_PASSED = "SCAN_PASSED"
SCAN_FINDINGS = "SCAN_FINDINGS"  # JSON list of {kind, file, detail}
SCAN_SUMMARY = "SCAN_SUMMARY"  # the findings in one line, for the rejection ticket
SCAN_RUN_ID = "SCAN_RUN_ID"  # the MLflow run holding scan_report.json

# -- create-ticket ----------------------------------------------------------------------------
TICKET_KIND = "TICKET_KIND"  # rejection / review / error
TICKET_REASON = "TICKET_REASON"
TICKET_SYSTEM = "TICKET_SYSTEM"  # jira / servicenow / local
TICKET_KEY = "TICKET_KEY"
TICKET_STATE = "TICKET_STATE"
TICKET_URL = "TICKET_URL"

# -- notify -----------------------------------------------------------------------------------
NOTIFY_LEVEL = "NOTIFY_LEVEL"  # info / warning / error
NOTIFY_MESSAGE = "NOTIFY_MESSAGE"
NOTIFICATION_ID = "NOTIFICATION_ID"

# -- mlc-retrain: retrain-claim, validate-data, train-submit, train-status, retrain-release ----
RETRAIN_CLAIMED = "RETRAIN_CLAIMED"  # this instance holds the model's retrain claim
RETRAIN_HOLDER = "RETRAIN_HOLDER"  # process instance of the running retrain (ours, or the one that refused us)
REVIEW_IN_TICKET = "REVIEW_IN_TICKET"  # tag governance_level=production: approval by ticket
RETRAIN_DMN_KEY = "RETRAIN_DMN_KEY"  # tag retrain_dmn, default mlc-retrain-decision
DEFAULT_RETRAIN_DMN_KEY = "mlc-retrain-decision"
DATA_VALID = "DATA_VALID"
DATA_PROBLEMS = "DATA_PROBLEMS"  # the problems found, "; "-separated
TRAIN_PARAMS = "TRAIN_PARAMS"  # JSON object handed to the training entrypoint as params
TRAIN_JOB_ID = "TRAIN_JOB_ID"
TRAIN_JOB_STATE = "TRAIN_JOB_STATE"  # submitted / running / succeeded (failed, crashed: BPMN error)
TRAIN_TIMEOUT = "TRAIN_TIMEOUT"  # seconds or ISO duration (default PT6H): a job running longer is stopped and fails

# -- retrain / user tasks (set by processes, read here for context) ----------------------------
APPROVED = "approved"
REVIEW_COMMENT = "review_comment"
