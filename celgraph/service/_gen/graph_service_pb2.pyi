from google.protobuf import any_pb2 as _any_pb2
from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class JobState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    JOB_STATE_UNSPECIFIED: _ClassVar[JobState]
    JOB_STATE_QUEUED: _ClassVar[JobState]
    JOB_STATE_RUNNING: _ClassVar[JobState]
    JOB_STATE_SUCCEEDED: _ClassVar[JobState]
    JOB_STATE_FAILED: _ClassVar[JobState]
    JOB_STATE_CANCELLED: _ClassVar[JobState]
    JOB_STATE_INTERRUPTED: _ClassVar[JobState]
JOB_STATE_UNSPECIFIED: JobState
JOB_STATE_QUEUED: JobState
JOB_STATE_RUNNING: JobState
JOB_STATE_SUCCEEDED: JobState
JOB_STATE_FAILED: JobState
JOB_STATE_CANCELLED: JobState
JOB_STATE_INTERRUPTED: JobState

class ListNodeTypesRequest(_message.Message):
    __slots__ = ("types",)
    TYPES_FIELD_NUMBER: _ClassVar[int]
    types: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, types: _Optional[_Iterable[str]] = ...) -> None: ...

class ListNodeTypesResponse(_message.Message):
    __slots__ = ("node_types", "port_types")
    NODE_TYPES_FIELD_NUMBER: _ClassVar[int]
    PORT_TYPES_FIELD_NUMBER: _ClassVar[int]
    node_types: _containers.RepeatedCompositeFieldContainer[NodeTypeDescriptor]
    port_types: _containers.RepeatedCompositeFieldContainer[PortTypeDescriptor]
    def __init__(self, node_types: _Optional[_Iterable[_Union[NodeTypeDescriptor, _Mapping]]] = ..., port_types: _Optional[_Iterable[_Union[PortTypeDescriptor, _Mapping]]] = ...) -> None: ...

class NodeTypeDescriptor(_message.Message):
    __slots__ = ("id", "name", "version", "category", "doc", "scope", "device", "deterministic", "side_effect", "inputs", "outputs", "params", "descriptor_json")
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    CATEGORY_FIELD_NUMBER: _ClassVar[int]
    DOC_FIELD_NUMBER: _ClassVar[int]
    SCOPE_FIELD_NUMBER: _ClassVar[int]
    DEVICE_FIELD_NUMBER: _ClassVar[int]
    DETERMINISTIC_FIELD_NUMBER: _ClassVar[int]
    SIDE_EFFECT_FIELD_NUMBER: _ClassVar[int]
    INPUTS_FIELD_NUMBER: _ClassVar[int]
    OUTPUTS_FIELD_NUMBER: _ClassVar[int]
    PARAMS_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTOR_JSON_FIELD_NUMBER: _ClassVar[int]
    id: str
    name: str
    version: int
    category: str
    doc: str
    scope: str
    device: str
    deterministic: bool
    side_effect: bool
    inputs: _containers.RepeatedCompositeFieldContainer[InputPort]
    outputs: _containers.RepeatedCompositeFieldContainer[OutputPort]
    params: _containers.RepeatedCompositeFieldContainer[ParamDescriptor]
    descriptor_json: str
    def __init__(self, id: _Optional[str] = ..., name: _Optional[str] = ..., version: _Optional[int] = ..., category: _Optional[str] = ..., doc: _Optional[str] = ..., scope: _Optional[str] = ..., device: _Optional[str] = ..., deterministic: _Optional[bool] = ..., side_effect: _Optional[bool] = ..., inputs: _Optional[_Iterable[_Union[InputPort, _Mapping]]] = ..., outputs: _Optional[_Iterable[_Union[OutputPort, _Mapping]]] = ..., params: _Optional[_Iterable[_Union[ParamDescriptor, _Mapping]]] = ..., descriptor_json: _Optional[str] = ...) -> None: ...

class InputPort(_message.Message):
    __slots__ = ("name", "type", "optional", "help", "accepts")
    NAME_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    OPTIONAL_FIELD_NUMBER: _ClassVar[int]
    HELP_FIELD_NUMBER: _ClassVar[int]
    ACCEPTS_FIELD_NUMBER: _ClassVar[int]
    name: str
    type: str
    optional: bool
    help: str
    accepts: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, name: _Optional[str] = ..., type: _Optional[str] = ..., optional: _Optional[bool] = ..., help: _Optional[str] = ..., accepts: _Optional[_Iterable[str]] = ...) -> None: ...

class OutputPort(_message.Message):
    __slots__ = ("name", "type", "help")
    NAME_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    HELP_FIELD_NUMBER: _ClassVar[int]
    name: str
    type: str
    help: str
    def __init__(self, name: _Optional[str] = ..., type: _Optional[str] = ..., help: _Optional[str] = ...) -> None: ...

class ParamDescriptor(_message.Message):
    __slots__ = ("name", "kind", "default_value", "help", "min", "max", "choices", "file")
    NAME_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_VALUE_FIELD_NUMBER: _ClassVar[int]
    HELP_FIELD_NUMBER: _ClassVar[int]
    MIN_FIELD_NUMBER: _ClassVar[int]
    MAX_FIELD_NUMBER: _ClassVar[int]
    CHOICES_FIELD_NUMBER: _ClassVar[int]
    FILE_FIELD_NUMBER: _ClassVar[int]
    name: str
    kind: str
    default_value: _struct_pb2.Value
    help: str
    min: float
    max: float
    choices: _containers.RepeatedCompositeFieldContainer[_struct_pb2.Value]
    file: str
    def __init__(self, name: _Optional[str] = ..., kind: _Optional[str] = ..., default_value: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ..., help: _Optional[str] = ..., min: _Optional[float] = ..., max: _Optional[float] = ..., choices: _Optional[_Iterable[_Union[_struct_pb2.Value, _Mapping]]] = ..., file: _Optional[str] = ...) -> None: ...

class PortTypeDescriptor(_message.Message):
    __slots__ = ("name", "doc", "accepts")
    NAME_FIELD_NUMBER: _ClassVar[int]
    DOC_FIELD_NUMBER: _ClassVar[int]
    ACCEPTS_FIELD_NUMBER: _ClassVar[int]
    name: str
    doc: str
    accepts: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, name: _Optional[str] = ..., doc: _Optional[str] = ..., accepts: _Optional[_Iterable[str]] = ...) -> None: ...

class Issue(_message.Message):
    __slots__ = ("code", "message", "node", "field")
    CODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    NODE_FIELD_NUMBER: _ClassVar[int]
    FIELD_FIELD_NUMBER: _ClassVar[int]
    code: str
    message: str
    node: str
    field: str
    def __init__(self, code: _Optional[str] = ..., message: _Optional[str] = ..., node: _Optional[str] = ..., field: _Optional[str] = ...) -> None: ...

class IssueList(_message.Message):
    __slots__ = ("issues",)
    ISSUES_FIELD_NUMBER: _ClassVar[int]
    issues: _containers.RepeatedCompositeFieldContainer[Issue]
    def __init__(self, issues: _Optional[_Iterable[_Union[Issue, _Mapping]]] = ...) -> None: ...

class ValidateGraphRequest(_message.Message):
    __slots__ = ("scene_json", "base_dir", "targets", "frames")
    SCENE_JSON_FIELD_NUMBER: _ClassVar[int]
    BASE_DIR_FIELD_NUMBER: _ClassVar[int]
    TARGETS_FIELD_NUMBER: _ClassVar[int]
    FRAMES_FIELD_NUMBER: _ClassVar[int]
    scene_json: str
    base_dir: str
    targets: _containers.RepeatedScalarFieldContainer[str]
    frames: str
    def __init__(self, scene_json: _Optional[str] = ..., base_dir: _Optional[str] = ..., targets: _Optional[_Iterable[str]] = ..., frames: _Optional[str] = ...) -> None: ...

class ValidateGraphResponse(_message.Message):
    __slots__ = ("valid", "issues", "node_issues")
    class NodeIssuesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: IssueList
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[IssueList, _Mapping]] = ...) -> None: ...
    VALID_FIELD_NUMBER: _ClassVar[int]
    ISSUES_FIELD_NUMBER: _ClassVar[int]
    NODE_ISSUES_FIELD_NUMBER: _ClassVar[int]
    valid: bool
    issues: _containers.RepeatedCompositeFieldContainer[Issue]
    node_issues: _containers.MessageMap[str, IssueList]
    def __init__(self, valid: _Optional[bool] = ..., issues: _Optional[_Iterable[_Union[Issue, _Mapping]]] = ..., node_issues: _Optional[_Mapping[str, IssueList]] = ...) -> None: ...

class RpcStatus(_message.Message):
    __slots__ = ("code", "message", "details")
    CODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    DETAILS_FIELD_NUMBER: _ClassVar[int]
    code: int
    message: str
    details: _containers.RepeatedCompositeFieldContainer[_any_pb2.Any]
    def __init__(self, code: _Optional[int] = ..., message: _Optional[str] = ..., details: _Optional[_Iterable[_Union[_any_pb2.Any, _Mapping]]] = ...) -> None: ...

class SubmitJobRequest(_message.Message):
    __slots__ = ("scene_json", "base_dir", "targets", "frames", "workers", "no_cache", "label")
    SCENE_JSON_FIELD_NUMBER: _ClassVar[int]
    BASE_DIR_FIELD_NUMBER: _ClassVar[int]
    TARGETS_FIELD_NUMBER: _ClassVar[int]
    FRAMES_FIELD_NUMBER: _ClassVar[int]
    WORKERS_FIELD_NUMBER: _ClassVar[int]
    NO_CACHE_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    scene_json: str
    base_dir: str
    targets: _containers.RepeatedScalarFieldContainer[str]
    frames: str
    workers: int
    no_cache: bool
    label: str
    def __init__(self, scene_json: _Optional[str] = ..., base_dir: _Optional[str] = ..., targets: _Optional[_Iterable[str]] = ..., frames: _Optional[str] = ..., workers: _Optional[int] = ..., no_cache: _Optional[bool] = ..., label: _Optional[str] = ...) -> None: ...

class SubmitJobResponse(_message.Message):
    __slots__ = ("job_id", "job")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    JOB_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    job: Job
    def __init__(self, job_id: _Optional[str] = ..., job: _Optional[_Union[Job, _Mapping]] = ...) -> None: ...

class GetJobRequest(_message.Message):
    __slots__ = ("job_id",)
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    def __init__(self, job_id: _Optional[str] = ...) -> None: ...

class ListJobsRequest(_message.Message):
    __slots__ = ("limit",)
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    limit: int
    def __init__(self, limit: _Optional[int] = ...) -> None: ...

class ListJobsResponse(_message.Message):
    __slots__ = ("jobs",)
    JOBS_FIELD_NUMBER: _ClassVar[int]
    jobs: _containers.RepeatedCompositeFieldContainer[Job]
    def __init__(self, jobs: _Optional[_Iterable[_Union[Job, _Mapping]]] = ...) -> None: ...

class CancelJobRequest(_message.Message):
    __slots__ = ("job_id",)
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    def __init__(self, job_id: _Optional[str] = ...) -> None: ...

class JobError(_message.Message):
    __slots__ = ("code", "message", "node", "node_type", "frame", "exception", "issues")
    CODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    NODE_FIELD_NUMBER: _ClassVar[int]
    NODE_TYPE_FIELD_NUMBER: _ClassVar[int]
    FRAME_FIELD_NUMBER: _ClassVar[int]
    EXCEPTION_FIELD_NUMBER: _ClassVar[int]
    ISSUES_FIELD_NUMBER: _ClassVar[int]
    code: str
    message: str
    node: str
    node_type: str
    frame: int
    exception: str
    issues: _containers.RepeatedCompositeFieldContainer[Issue]
    def __init__(self, code: _Optional[str] = ..., message: _Optional[str] = ..., node: _Optional[str] = ..., node_type: _Optional[str] = ..., frame: _Optional[int] = ..., exception: _Optional[str] = ..., issues: _Optional[_Iterable[_Union[Issue, _Mapping]]] = ...) -> None: ...

class JobOutput(_message.Message):
    __slots__ = ("node", "output", "frame", "kind", "path", "sha256", "bytes", "key")
    NODE_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_FIELD_NUMBER: _ClassVar[int]
    FRAME_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    SHA256_FIELD_NUMBER: _ClassVar[int]
    BYTES_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    node: str
    output: str
    frame: int
    kind: str
    path: str
    sha256: str
    bytes: int
    key: str
    def __init__(self, node: _Optional[str] = ..., output: _Optional[str] = ..., frame: _Optional[int] = ..., kind: _Optional[str] = ..., path: _Optional[str] = ..., sha256: _Optional[str] = ..., bytes: _Optional[int] = ..., key: _Optional[str] = ...) -> None: ...

class Job(_message.Message):
    __slots__ = ("job_id", "state", "created_time", "started_time", "finished_time", "targets", "frames", "base_dir", "label", "error", "outputs", "tasks_total", "tasks_done", "tasks_cached", "last_seq", "cancel_requested")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    CREATED_TIME_FIELD_NUMBER: _ClassVar[int]
    STARTED_TIME_FIELD_NUMBER: _ClassVar[int]
    FINISHED_TIME_FIELD_NUMBER: _ClassVar[int]
    TARGETS_FIELD_NUMBER: _ClassVar[int]
    FRAMES_FIELD_NUMBER: _ClassVar[int]
    BASE_DIR_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    OUTPUTS_FIELD_NUMBER: _ClassVar[int]
    TASKS_TOTAL_FIELD_NUMBER: _ClassVar[int]
    TASKS_DONE_FIELD_NUMBER: _ClassVar[int]
    TASKS_CACHED_FIELD_NUMBER: _ClassVar[int]
    LAST_SEQ_FIELD_NUMBER: _ClassVar[int]
    CANCEL_REQUESTED_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    state: JobState
    created_time: float
    started_time: float
    finished_time: float
    targets: _containers.RepeatedScalarFieldContainer[str]
    frames: str
    base_dir: str
    label: str
    error: JobError
    outputs: _containers.RepeatedCompositeFieldContainer[JobOutput]
    tasks_total: int
    tasks_done: int
    tasks_cached: int
    last_seq: int
    cancel_requested: bool
    def __init__(self, job_id: _Optional[str] = ..., state: _Optional[_Union[JobState, str]] = ..., created_time: _Optional[float] = ..., started_time: _Optional[float] = ..., finished_time: _Optional[float] = ..., targets: _Optional[_Iterable[str]] = ..., frames: _Optional[str] = ..., base_dir: _Optional[str] = ..., label: _Optional[str] = ..., error: _Optional[_Union[JobError, _Mapping]] = ..., outputs: _Optional[_Iterable[_Union[JobOutput, _Mapping]]] = ..., tasks_total: _Optional[int] = ..., tasks_done: _Optional[int] = ..., tasks_cached: _Optional[int] = ..., last_seq: _Optional[int] = ..., cancel_requested: _Optional[bool] = ...) -> None: ...

class WatchJobRequest(_message.Message):
    __slots__ = ("job_id", "from_seq")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    FROM_SEQ_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    from_seq: int
    def __init__(self, job_id: _Optional[str] = ..., from_seq: _Optional[int] = ...) -> None: ...

class JobEvents(_message.Message):
    __slots__ = ("events",)
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    events: _containers.RepeatedCompositeFieldContainer[JobEvent]
    def __init__(self, events: _Optional[_Iterable[_Union[JobEvent, _Mapping]]] = ...) -> None: ...

class JobEvent(_message.Message):
    __slots__ = ("job_id", "seq", "kind", "time", "node", "node_type", "frame", "key", "progress", "message", "seconds", "data_json", "state")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    SEQ_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    NODE_FIELD_NUMBER: _ClassVar[int]
    NODE_TYPE_FIELD_NUMBER: _ClassVar[int]
    FRAME_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    SECONDS_FIELD_NUMBER: _ClassVar[int]
    DATA_JSON_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    seq: int
    kind: str
    time: float
    node: str
    node_type: str
    frame: int
    key: str
    progress: float
    message: str
    seconds: float
    data_json: str
    state: JobState
    def __init__(self, job_id: _Optional[str] = ..., seq: _Optional[int] = ..., kind: _Optional[str] = ..., time: _Optional[float] = ..., node: _Optional[str] = ..., node_type: _Optional[str] = ..., frame: _Optional[int] = ..., key: _Optional[str] = ..., progress: _Optional[float] = ..., message: _Optional[str] = ..., seconds: _Optional[float] = ..., data_json: _Optional[str] = ..., state: _Optional[_Union[JobState, str]] = ...) -> None: ...

class ReadOutputRequest(_message.Message):
    __slots__ = ("job_id", "path", "offset", "length", "chunk_size")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    LENGTH_FIELD_NUMBER: _ClassVar[int]
    CHUNK_SIZE_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    path: str
    offset: int
    length: int
    chunk_size: int
    def __init__(self, job_id: _Optional[str] = ..., path: _Optional[str] = ..., offset: _Optional[int] = ..., length: _Optional[int] = ..., chunk_size: _Optional[int] = ...) -> None: ...

class OutputChunk(_message.Message):
    __slots__ = ("data", "offset", "total_bytes", "last")
    DATA_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    TOTAL_BYTES_FIELD_NUMBER: _ClassVar[int]
    LAST_FIELD_NUMBER: _ClassVar[int]
    data: bytes
    offset: int
    total_bytes: int
    last: bool
    def __init__(self, data: _Optional[bytes] = ..., offset: _Optional[int] = ..., total_bytes: _Optional[int] = ..., last: _Optional[bool] = ...) -> None: ...

class CacheUsageRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class CacheUsageResponse(_message.Message):
    __slots__ = ("root", "entries", "bytes")
    ROOT_FIELD_NUMBER: _ClassVar[int]
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    BYTES_FIELD_NUMBER: _ClassVar[int]
    root: str
    entries: int
    bytes: int
    def __init__(self, root: _Optional[str] = ..., entries: _Optional[int] = ..., bytes: _Optional[int] = ...) -> None: ...

class ListCacheRequest(_message.Message):
    __slots__ = ("limit",)
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    limit: int
    def __init__(self, limit: _Optional[int] = ...) -> None: ...

class CacheEntry(_message.Message):
    __slots__ = ("key", "bytes", "last_used", "node_type", "node", "frame", "path")
    KEY_FIELD_NUMBER: _ClassVar[int]
    BYTES_FIELD_NUMBER: _ClassVar[int]
    LAST_USED_FIELD_NUMBER: _ClassVar[int]
    NODE_TYPE_FIELD_NUMBER: _ClassVar[int]
    NODE_FIELD_NUMBER: _ClassVar[int]
    FRAME_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    key: str
    bytes: int
    last_used: float
    node_type: str
    node: str
    frame: int
    path: str
    def __init__(self, key: _Optional[str] = ..., bytes: _Optional[int] = ..., last_used: _Optional[float] = ..., node_type: _Optional[str] = ..., node: _Optional[str] = ..., frame: _Optional[int] = ..., path: _Optional[str] = ...) -> None: ...

class ListCacheResponse(_message.Message):
    __slots__ = ("root", "entries")
    ROOT_FIELD_NUMBER: _ClassVar[int]
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    root: str
    entries: _containers.RepeatedCompositeFieldContainer[CacheEntry]
    def __init__(self, root: _Optional[str] = ..., entries: _Optional[_Iterable[_Union[CacheEntry, _Mapping]]] = ...) -> None: ...

class ClearCacheRequest(_message.Message):
    __slots__ = ("force",)
    FORCE_FIELD_NUMBER: _ClassVar[int]
    force: bool
    def __init__(self, force: _Optional[bool] = ...) -> None: ...

class GcCacheRequest(_message.Message):
    __slots__ = ("max_bytes", "older_than_seconds", "force")
    MAX_BYTES_FIELD_NUMBER: _ClassVar[int]
    OLDER_THAN_SECONDS_FIELD_NUMBER: _ClassVar[int]
    FORCE_FIELD_NUMBER: _ClassVar[int]
    max_bytes: int
    older_than_seconds: float
    force: bool
    def __init__(self, max_bytes: _Optional[int] = ..., older_than_seconds: _Optional[float] = ..., force: _Optional[bool] = ...) -> None: ...

class CacheRemoved(_message.Message):
    __slots__ = ("root", "removed", "bytes")
    ROOT_FIELD_NUMBER: _ClassVar[int]
    REMOVED_FIELD_NUMBER: _ClassVar[int]
    BYTES_FIELD_NUMBER: _ClassVar[int]
    root: str
    removed: int
    bytes: int
    def __init__(self, root: _Optional[str] = ..., removed: _Optional[int] = ..., bytes: _Optional[int] = ...) -> None: ...

class GetServerInfoRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ServerInfo(_message.Message):
    __slots__ = ("version", "store_root", "state_dir", "base_dir", "max_jobs", "max_message_bytes", "token_required", "jobs_running", "jobs_queued", "issue_codes", "allowed_roots")
    class IssueCodesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    VERSION_FIELD_NUMBER: _ClassVar[int]
    STORE_ROOT_FIELD_NUMBER: _ClassVar[int]
    STATE_DIR_FIELD_NUMBER: _ClassVar[int]
    BASE_DIR_FIELD_NUMBER: _ClassVar[int]
    MAX_JOBS_FIELD_NUMBER: _ClassVar[int]
    MAX_MESSAGE_BYTES_FIELD_NUMBER: _ClassVar[int]
    TOKEN_REQUIRED_FIELD_NUMBER: _ClassVar[int]
    JOBS_RUNNING_FIELD_NUMBER: _ClassVar[int]
    JOBS_QUEUED_FIELD_NUMBER: _ClassVar[int]
    ISSUE_CODES_FIELD_NUMBER: _ClassVar[int]
    ALLOWED_ROOTS_FIELD_NUMBER: _ClassVar[int]
    version: str
    store_root: str
    state_dir: str
    base_dir: str
    max_jobs: int
    max_message_bytes: int
    token_required: bool
    jobs_running: int
    jobs_queued: int
    issue_codes: _containers.ScalarMap[str, str]
    allowed_roots: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, version: _Optional[str] = ..., store_root: _Optional[str] = ..., state_dir: _Optional[str] = ..., base_dir: _Optional[str] = ..., max_jobs: _Optional[int] = ..., max_message_bytes: _Optional[int] = ..., token_required: _Optional[bool] = ..., jobs_running: _Optional[int] = ..., jobs_queued: _Optional[int] = ..., issue_codes: _Optional[_Mapping[str, str]] = ..., allowed_roots: _Optional[_Iterable[str]] = ...) -> None: ...
