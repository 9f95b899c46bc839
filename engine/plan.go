package engine

import (
	"time"

	"casesync/engine/mapping"
)

// Plan is one loaded deployment: the spec as written plus every program
// compiled and every reference resolved. It is built once by engine/spec and
// never mutated; a run keeps the plan it started with.
type Plan struct {
	Name string
	// Dir is the deployment folder; Hash identifies the spec text (every
	// .cue and lookup file), recorded on every run.
	Dir  string
	Hash string

	Spec       DeploymentSpec
	Vars       map[string]any
	Secrets    []string
	Connectors map[string]*Connector
	Lookups    *mapping.Registry
	APILookups map[string]*APILookup
	Pipelines  map[string]*Pipeline
	// Order lists pipeline names sorted, for stable output. A pipeline
	// with branches is not in it: its branches are.
	Order []string
	// Groups lists, for each pipeline with branches, its branches' names
	// sorted: they run over one listing of its source (Runner.SyncGroup).
	Groups map[string][]string
	// Warnings are what engine check reports without failing
	// ("file:line:col: path: code: message"), such as a plain-http
	// base_url to another machine.
	Warnings []string
}

// Connector is a connector's spec with its programs compiled.
type Connector struct {
	Name string
	// Kind is the connector's kind: "rest" (an HTTP API) or "sql".
	Kind       string
	Spec       ConnectorSpec
	Auth       Auth
	Pagination *Pagination // default for listings; nil = single page
	Timeout    time.Duration
	Backoff    time.Duration
	MaxBackoff time.Duration
	// CAPEM is the connector's tls.ca_file, read when the spec loads; nil
	// trusts the system's CAs.
	CAPEM []byte
}

// Auth is the connector's auth kind with its programs compiled.
type Auth struct {
	Kind      string // none, basic, header, token_login, oauth2
	Spec      AuthSpec
	Token     *mapping.JQ // token_login: token from the body
	ExpiresIn *mapping.JQ
	TTL       time.Duration
}

// Pagination is a pagination kind with its programs compiled.
type Pagination struct {
	Kind  string // page, offset, next_link, body_cursor, none
	Spec  PaginationSpec
	Total *mapping.JQ // page/offset: total from the response
	Next  *mapping.JQ // next_link: URL; body_cursor: next body fields
}

// Request is a request spec compiled: templates, body mapping, pagination.
type Request struct {
	Method     string
	Path       *mapping.Template
	Query      []QueryParam
	Headers    map[string]Text
	Body       *mapping.Value
	Pagination *Pagination // nil: the connector's default
	Records    *mapping.JQ // nil: the whole body is one record
	Pos        string
}

// QueryParam is one query parameter: a template, or a secret (by name)
// that the connector resolves when it sends the request.
type QueryParam struct {
	Name   string
	Value  *mapping.Template // nil when Secret is set
	Secret string
}

// Pipeline is one compiled pipeline.
type Pipeline struct {
	Name        string
	Spec        PipelineSpec
	Pos         string
	Source      PipelineSource
	Filters     []Filter
	Enrich      []Enrich
	Each        *Each
	Map         *mapping.Mapping
	Upsert      Upsert
	After       []After
	MaxAttempts int
	Concurrency int
	// Group is the pipeline whose branch this is, "" for a pipeline of its
	// own; the branch reads that pipeline's source listing with its
	// siblings.
	Group string
	// Inbox is the compiled trigger.inbox; nil when the pipeline has none.
	Inbox *Inbox
}

// Inbox is a compiled webhook inbox: deliveries POSTed to Path feed the
// pipeline one record at a time.
type Inbox struct {
	Path string
	// Secret is the shared secret, sent in Header or as the basic-auth
	// password; zero when the inbox checks only signatures.
	Secret Text
	Header string // header carrying the secret
	// HMAC is the signature check; nil when the inbox checks only Secret.
	HMAC *InboxHMAC
	// Key runs on a delivery's body: it yields the record key to re-fetch
	// with Fetch, or (without Fetch) the record itself.
	Key *mapping.JQ
	// Fetch re-reads the record by $key; nil processes the delivered body.
	Fetch    *Request
	MaxBytes int64
	Pos      string
	// Event runs on the delivery envelope ({headers, query, body}) and
	// names its event type ($delivery.event); nil leaves it null.
	Event *mapping.JQ
	// DedupeID runs on the envelope and yields the sender's delivery id;
	// nil identifies a delivery by its body's hash.
	DedupeID *mapping.JQ
	// DedupeWindow is how long a processed delivery id is remembered: a
	// repeat within it is a duplicate, a repeat after it a new delivery
	// (zero: as soon as the first is processed). Without DedupeSet a
	// delivery id is remembered for ever.
	DedupeWindow time.Duration
	DedupeSet    bool
}

// InboxHMAC is a compiled signature check (see HMACSpec).
type InboxHMAC struct {
	Secret          Text
	SignatureHeader string
	TimestampHeader string
	Prefix          string
	Base64          bool // the digest is base64 (standard) rather than hex
	Window          time.Duration
}

// PipelineSource is the compiled source of a pipeline.
type PipelineSource struct {
	Connector string
	// NoListing: records arrive only through the inbox; there is no
	// listing to walk (source.listing: false).
	NoListing bool
	Request   Request
	Key       *mapping.JQ
	Updated   *mapping.JQ
	Cursor    *Cursor
	Get       *Request
}

// Cursor is an incremental cursor with its rendering fixed.
type Cursor struct {
	Field    *mapping.JQ
	Layout   string // Go time layout used to render $cursor
	Next     string // max_seen or run_start
	Overlap  time.Duration
	Initial  time.Time
	DayStart bool
}

// Filter is one compiled filter.
type Filter struct {
	Expr   *mapping.Expr
	Reason string
	Pos    string
}

// Enrich is one compiled enrich step.
type Enrich struct {
	Name      string
	Connector string
	Request   Request
	As        string
	When      *mapping.Expr
	AllPages  bool
	Cache     bool
	// Pick narrows the cached answer to the record's items (none: the
	// whole answer).
	Pick    []Pick
	OnError string
	Pos     string
	// Classify sorts the step's failures by status and error body.
	Classify []Classify
}

// Pick is one compiled pick rule: By on each item of the answer, Values
// on the record.
type Pick struct {
	By     *mapping.JQ
	Values *mapping.JQ
}

// Classify is one compiled classification rule: a failed request whose
// status is in Status (any when empty) and whose error body satisfies
// Body (when set) fails with Reason and Class, or, with Skip, ends the
// record as skipped with Reason.
type Classify struct {
	Status []int
	Body   *mapping.JQ
	Reason string
	Class  Class
	Skip   bool
	Pos    string
}

// Each is a compiled fan-out.
type Each struct {
	JQ  *mapping.JQ
	Key *mapping.JQ
}

// Upsert is a compiled upsert.
type Upsert struct {
	Connector   string
	Key         *mapping.JQ
	KeyFallback *mapping.JQ
	Mode        string
	Find        *Request
	FindID      *mapping.JQ
	Create      *Request
	CreateID    *mapping.JQ
	CreateTxn   *mapping.JQ
	Update      *Request
	UpdateTxn   *mapping.JQ
	Idempotent  bool
	Unchanged   string
	LinkSystem  string
	Pos         string
	// Native: the target writes each payload itself as one upsert by key
	// (a SQL INSERT … ON CONFLICT), so no create or update request is
	// declared and every write is idempotent.
	Native bool
	// RemoveLeft: rows whose source record left the source set (a record
	// the filters now reject, or a fanned-out item no longer in its record)
	// are removed or flagged by the target (BatchTarget.Remove).
	RemoveLeft bool
	// Classify sorts failed creates and updates by status and error body.
	Classify []Classify

	// CreateCheck and UpdateCheck judge the write's 2xx answer.
	CreateCheck AnswerCheck
	UpdateCheck AnswerCheck
}

// UpsertWrite is the declared request of one create or update, with the
// programs that read its answer.
type UpsertWrite struct {
	Request     *Request
	Check       AnswerCheck
	ID          *mapping.JQ // a create's: the target's id in the answer
	Transaction *mapping.JQ
}

// Write is the request a create, or an update, is sent with. Without an
// update request an update goes to the create request: an upsert endpoint
// updating what it has.
func (u *Upsert) Write(update bool) UpsertWrite {
	if update && u.Update != nil {
		return UpsertWrite{Request: u.Update, Check: u.UpdateCheck, Transaction: u.UpdateTxn}
	}
	w := UpsertWrite{Request: u.Create, Check: u.CreateCheck, Transaction: u.CreateTxn}
	if !update {
		w.ID = u.CreateID
	}
	return w
}

// AnswerCheck judges a successful (2xx) answer for APIs that report a
// refusal in the body: when OK is set it must yield true, or the request
// counts as refused, with the reason Refusal (when set) reads from it.
type AnswerCheck struct {
	OK      *mapping.JQ
	Refusal *mapping.JQ
}

// After is a compiled after-step.
type After struct {
	Name        string
	Connector   string
	When        *mapping.Expr
	Request     Request
	Transaction *mapping.JQ
	Poll        *Poll
	OnError     string
	Pos         string
	// On lists the item outcomes the step runs after: "written" (created
	// or updated, the default), "unchanged", "skipped", "failed".
	On map[string]bool

	Check AnswerCheck // judges the request's 2xx answer
}

// Poll is a compiled status poll.
type Poll struct {
	Request  Request
	Status   *mapping.JQ
	Done     map[string]bool
	Failed   map[string]bool
	Interval time.Duration
	Timeout  time.Duration
}

// APILookup is a live lookup: a request per key, cached per run.
type APILookup struct {
	Name      string
	Connector string
	Request   Request
	Value     *mapping.JQ
	// Table: the connector loads the whole table once per run
	// (TableLoader) instead of a request per key.
	Table bool
}
