package engine

// The types below mirror specs/lib/schema/pipeline.cue field for field. The loader
// decodes a unified spec into them with unknown fields disallowed, so a field
// added to the schema and forgotten here fails a test instead of being
// silently ignored.

// DeploymentSpec is one deployment as written.
type DeploymentSpec struct {
	Name       string                   `json:"name,omitempty"`
	Secrets    []string                 `json:"secrets"`
	Vars       map[string]any           `json:"vars"`
	Connectors map[string]ConnectorSpec `json:"connectors"`
	Lookups    map[string]LookupSpec    `json:"lookups"`
	Pipelines  map[string]PipelineSpec  `json:"pipelines"`
	// JQDefs are shared jq definitions by block name, callable from
	// every jq program of the deployment.
	JQDefs map[string]string `json:"jq_defs"`
	Limits LimitsSpec        `json:"limits"`
	// Sensitivity classes fields by name: pii, health, protection or none.
	Sensitivity map[string]string `json:"sensitivity"`
}

// LimitsSpec bounds every jq and expr evaluation.
type LimitsSpec struct {
	EvalTimeout  string `json:"eval_timeout"`
	EvalMaxBytes int    `json:"eval_max_bytes"`
}

// Text is a value written out or taken from a secret: exactly one is set.
type Text struct {
	Value  string
	Secret string
}

// ConnectorSpec configures a connector: an HTTP API (BaseURL and the
// fields after it) or a SQL database (SQL).
type ConnectorSpec struct {
	BaseURL     string            `json:"base_url,omitempty"`
	SQL         *SQLConnectorSpec `json:"sql,omitempty"`
	Auth        AuthSpec          `json:"auth"`
	Headers     map[string]Text   `json:"headers"`
	Timeout     string            `json:"timeout"`
	Retry       RetrySpec         `json:"retry"`
	RateLimit   *RateLimitSpec    `json:"rate_limit,omitempty"`
	Concurrency int               `json:"concurrency"`
	// MaxResponseBytes bounds a response body; 0 means the default.
	MaxResponseBytes int64           `json:"max_response_bytes"`
	Pagination       *PaginationSpec `json:"pagination,omitempty"`
	Normalize        NormalizeSpec   `json:"normalize"`
	TLS              *TLSSpec        `json:"tls,omitempty"`
	// MergeKey identifies the rows of arrays of objects the target merges
	// (dry-run diffs them by it).
	MergeKey string `json:"merge_key,omitempty"`
}

// TLSSpec is a connector's TLS: trusted CAs, a client certificate for
// mutual TLS, and the lowest version accepted.
type TLSSpec struct {
	CAFile     string `json:"ca_file,omitempty"`
	ClientCert Text   `json:"client_cert"`
	ClientKey  Text   `json:"client_key"`
	MinVersion string `json:"min_version"`
}

// SQLConnectorSpec is a SQL database reached through database/sql.
type SQLConnectorSpec struct {
	// DSN names the secret holding the data source name; its scheme
	// (postgres://, sqlite:) chooses the driver.
	DSN Text `json:"dsn"`
}

// SQLSourceSpec lists records with a select, page by page.
type SQLSourceSpec struct {
	Select   string `json:"select"`
	PageSize int    `json:"page_size"`
}

// SQLLookupSpec loads a lookup table with a select, once per run.
type SQLLookupSpec struct {
	Connector string `json:"connector"`
	Select    string `json:"select"`
	Key       string `json:"key"`
	Value     string `json:"value,omitempty"`
}

// SQLUpsertSpec writes payloads as rows: INSERT … ON CONFLICT (Key) DO
// UPDATE into Table, one column per mapped field.
type SQLUpsertSpec struct {
	Table      string   `json:"table"`
	Key        []string `json:"key"`
	OnLeave    string   `json:"on_leave"`
	FlagColumn string   `json:"flag_column,omitempty"`
}

// RetrySpec is the retry policy for retryable failures.
type RetrySpec struct {
	MaxAttempts int    `json:"max_attempts"`
	Backoff     string `json:"backoff"`
	MaxBackoff  string `json:"max_backoff"`
}

// RateLimitSpec is a token bucket.
type RateLimitSpec struct {
	PerSecond float64 `json:"per_second"`
	Burst     int     `json:"burst"`
}

// NormalizeSpec rewrites bodies a connector sends.
type NormalizeSpec struct {
	NullAsEmptyString bool `json:"null_as_empty_string"`
	DropNulls         bool `json:"drop_nulls"`
}

// AuthSpec holds exactly one auth kind.
type AuthSpec struct {
	None       *struct{}       `json:"none,omitempty"`
	Basic      *BasicAuth      `json:"basic,omitempty"`
	Header     *HeaderAuth     `json:"header,omitempty"`
	TokenLogin *TokenLoginAuth `json:"token_login,omitempty"`
	OAuth2     *OAuth2Auth     `json:"oauth2,omitempty"`
}

// BasicAuth sends HTTP basic credentials on every call.
type BasicAuth struct {
	Username Text `json:"username"`
	Password Text `json:"password"`
}

// HeaderAuth sends one static header (bearer token, API key).
type HeaderAuth struct {
	Name   string `json:"name"`
	Prefix string `json:"prefix"`
	Value  Text   `json:"value"`
}

// TokenLoginAuth exchanges credentials for a token and/or headers.
type TokenLoginAuth struct {
	URL             string          `json:"url,omitempty"`
	Path            string          `json:"path,omitempty"`
	Method          string          `json:"method"`
	Body            map[string]any  `json:"body,omitempty"` // leaves: string or {"secret": NAME}
	Form            map[string]Text `json:"form,omitempty"`
	Token           string          `json:"token,omitempty"`
	TokenHeader     string          `json:"token_header"`
	TokenPrefix     string          `json:"token_prefix"`
	TokenQuery      string          `json:"token_query,omitempty"`
	SendBackHeaders []string        `json:"send_back_headers"`
	ExpiresIn       string          `json:"expires_in,omitempty"`
	TTL             string          `json:"ttl,omitempty"`
}

// OAuth2Auth is the OAuth2 client-credentials grant.
type OAuth2Auth struct {
	TokenURL     string   `json:"token_url"`
	ClientID     Text     `json:"client_id"`
	ClientSecret Text     `json:"client_secret"`
	Scopes       []string `json:"scopes"`
}

// PaginationSpec holds exactly one pagination kind.
type PaginationSpec struct {
	Page       *PagePagination       `json:"page,omitempty"`
	Offset     *OffsetPagination     `json:"offset,omitempty"`
	NextLink   *NextLinkPagination   `json:"next_link,omitempty"`
	BodyCursor *BodyCursorPagination `json:"body_cursor,omitempty"`
	None       *struct{}             `json:"none,omitempty"`
}

// PagePagination is page/per with an optional total.
type PagePagination struct {
	PageParam string `json:"page_param"`
	PerParam  string `json:"per_param"`
	Per       int    `json:"per"`
	Start     int    `json:"start"`
	Total     string `json:"total,omitempty"`
	MaxPages  int    `json:"max_pages"`
}

// OffsetPagination is offset/limit with an optional total.
type OffsetPagination struct {
	OffsetParam string `json:"offset_param"`
	LimitParam  string `json:"limit_param"`
	Limit       int    `json:"limit"`
	Total       string `json:"total,omitempty"`
	MaxPages    int    `json:"max_pages"`
}

// NextLinkPagination follows a next URL from the body or a Link header.
type NextLinkPagination struct {
	JQ         string `json:"jq,omitempty"`
	LinkHeader bool   `json:"link_header"`
	MaxPages   int    `json:"max_pages"`
}

// BodyCursorPagination carries a continuation in the next JSON body.
type BodyCursorPagination struct {
	Next     string `json:"next"`
	MaxPages int    `json:"max_pages"`
}

// RequestSpec is a request as written: templates and a body mapping.
type RequestSpec struct {
	Method     string          `json:"method"`
	Path       string          `json:"path"`
	Query      map[string]Text `json:"query"`
	Headers    map[string]Text `json:"headers"`
	Body       *ValueSpec      `json:"body,omitempty"`
	Pagination *PaginationSpec `json:"pagination,omitempty"`
	Records    string          `json:"records,omitempty"`
}

// SourceSpec is where a pipeline reads.
type SourceSpec struct {
	RequestSpec
	Connector string         `json:"connector"`
	Listing   bool           `json:"listing"`
	Key       string         `json:"key"`
	Updated   string         `json:"updated,omitempty"`
	Cursor    *CursorSpec    `json:"cursor,omitempty"`
	Get       *RequestSpec   `json:"get,omitempty"`
	SQL       *SQLSourceSpec `json:"sql,omitempty"`
}

// CursorSpec is an incremental cursor.
type CursorSpec struct {
	Field    string `json:"field,omitempty"`
	Format   string `json:"format"`
	Next     string `json:"next"`
	Overlap  string `json:"overlap"`
	Initial  string `json:"initial"`
	DayStart bool   `json:"day_start"`
}

// FilterSpec keeps records for which Expr holds.
type FilterSpec struct {
	Expr   string `json:"expr"`
	Reason string `json:"reason"`
}

// EnrichSpec attaches a follow-up request's result to each record.
type EnrichSpec struct {
	Name      string         `json:"name"`
	Connector string         `json:"connector"`
	Request   RequestSpec    `json:"request"`
	As        string         `json:"as,omitempty"`
	When      string         `json:"when,omitempty"`
	AllPages  bool           `json:"all_pages"`
	Cache     bool           `json:"cache"`
	Pick      []PickSpec     `json:"pick,omitempty"`
	OnError   string         `json:"on_error"`
	Classify  []ClassifySpec `json:"classify"`
}

// PickSpec is one rule narrowing a cached list answer to a record's items.
type PickSpec struct {
	By     string `json:"by"`
	Values string `json:"values"`
}

// ValueSpec is one mapped value.
type ValueSpec struct {
	JQ        *string              `json:"jq,omitempty"`
	Expr      *string              `json:"expr,omitempty"`
	Const     any                  `json:"const,omitempty"`
	Fields    map[string]ValueSpec `json:"fields,omitempty"`
	Each      *string              `json:"each,omitempty"`
	Map       map[string]ValueSpec `json:"map,omitempty"`
	Default   any                  `json:"default,omitempty"`
	OmitEmpty bool                 `json:"omit_empty"`
	MergeKey  string               `json:"merge_key,omitempty"`
	Secret    string               `json:"secret,omitempty"`
}

// ClassifySpec maps a failed request's status and error body to a reason
// code and what to do about it.
type ClassifySpec struct {
	Status []int  `json:"status"`
	Body   string `json:"body,omitempty"`
	Reason string `json:"reason"`
	Class  string `json:"class"`
}

// LookupSpec is a table, rule or live lookup.
type LookupSpec struct {
	File            string         `json:"file,omitempty"`
	Key             string         `json:"key,omitempty"`
	Value           string         `json:"value,omitempty"`
	Values          map[string]any `json:"values,omitempty"`
	Rule            *RuleSpec      `json:"rule,omitempty"`
	API             *APILookupSpec `json:"api,omitempty"`
	SQL             *SQLLookupSpec `json:"sql,omitempty"`
	CaseInsensitive bool           `json:"case_insensitive"`
	OnMiss          string         `json:"on_miss"`
	Default         any            `json:"default,omitempty"`
}

// RuleSpec is a naming rule such as "agency-{org}".
type RuleSpec struct {
	Forward string `json:"forward"`
}

// APILookupSpec resolves keys against a live API.
type APILookupSpec struct {
	Connector string      `json:"connector"`
	Request   RequestSpec `json:"request"`
	Value     string      `json:"value"`
}

// UpsertSpec writes the mapped payload to the target.
type UpsertSpec struct {
	Connector   string         `json:"connector"`
	Key         string         `json:"key,omitempty"`
	KeyFallback string         `json:"key_fallback,omitempty"`
	Mode        string         `json:"mode"`
	Find        *FindSpec      `json:"find,omitempty"`
	Create      *WriteSpec     `json:"create,omitempty"`
	Update      *WriteSpec     `json:"update,omitempty"`
	Idempotent  bool           `json:"idempotent"`
	Unchanged   string         `json:"unchanged"`
	Link        *LinkSpec      `json:"link,omitempty"`
	NoFind      string         `json:"no_find,omitempty"`
	Classify    []ClassifySpec `json:"classify"`
	SQL         *SQLUpsertSpec `json:"sql,omitempty"`
}

// FindSpec queries the target by key.
type FindSpec struct {
	RequestSpec
	ID string `json:"id"`
}

// WriteSpec is a create or update request.
type WriteSpec struct {
	RequestSpec
	ID          string `json:"id,omitempty"`
	Transaction string `json:"transaction,omitempty"`
	OK          string `json:"ok,omitempty"`
	Refusal     string `json:"refusal,omitempty"`
}

// LinkSpec names the target system in the link ledger.
type LinkSpec struct {
	System string `json:"system"`
}

// AfterSpec is a per-record call after a successful write.
type AfterSpec struct {
	Name        string      `json:"name"`
	Connector   string      `json:"connector"`
	When        string      `json:"when,omitempty"`
	Request     RequestSpec `json:"request"`
	OK          string      `json:"ok,omitempty"`
	Refusal     string      `json:"refusal,omitempty"`
	Poll        *PollSpec   `json:"poll,omitempty"`
	Transaction string      `json:"transaction,omitempty"`
	OnError     string      `json:"on_error"`
	On          []string    `json:"on"`
}

// PollSpec polls an asynchronous status until it is terminal.
type PollSpec struct {
	Request  RequestSpec `json:"request"`
	Status   string      `json:"status"`
	Done     []string    `json:"done"`
	Failed   []string    `json:"failed"`
	Interval string      `json:"interval"`
	Timeout  string      `json:"timeout"`
}

// TriggerSpec says when a pipeline runs.
type TriggerSpec struct {
	Cron   string     `json:"cron,omitempty"`
	After  []string   `json:"after,omitempty"`
	Inbox  *InboxSpec `json:"inbox,omitempty"`
	Manual bool       `json:"manual"`
}

// InboxSpec is a webhook inbox that feeds a pipeline.
type InboxSpec struct {
	Path     string       `json:"path"`
	Secret   Text         `json:"secret"`
	Header   string       `json:"header"`
	HMAC     *HMACSpec    `json:"hmac,omitempty"`
	Key      string       `json:"key"`
	Fetch    *RequestSpec `json:"fetch,omitempty"`
	MaxBytes int          `json:"max_bytes"`
	Event    string       `json:"event,omitempty"`
	Dedupe   DedupeSpec   `json:"dedupe"`
}

// DedupeSpec says when two deliveries are the same one.
type DedupeSpec struct {
	ID     string `json:"id,omitempty"`
	Window string `json:"window"`
}

// HMACSpec is an inbox's signature check: HMAC-SHA256 over
// "<timestamp>.<raw body>".
type HMACSpec struct {
	Secret          Text   `json:"secret"`
	SignatureHeader string `json:"signature_header"`
	TimestampHeader string `json:"timestamp_header"`
	Prefix          string `json:"prefix"`
	Encoding        string `json:"encoding"`
	Window          string `json:"window"`
}

// EachSpec fans one record out into several writes.
type EachSpec struct {
	JQ  string `json:"jq"`
	Key string `json:"key"`
}

// PipelineSpec is one direction of one flow.
type PipelineSpec struct {
	Description string               `json:"description,omitempty"`
	Trigger     TriggerSpec          `json:"trigger"`
	Source      SourceSpec           `json:"source"`
	Filter      []FilterSpec         `json:"filter"`
	Enrich      []EnrichSpec         `json:"enrich"`
	Each        *EachSpec            `json:"each,omitempty"`
	Map         map[string]ValueSpec `json:"map"`
	Upsert      UpsertSpec           `json:"upsert"`
	After       []AfterSpec          `json:"after"`
	MaxAttempts int                  `json:"max_attempts"`
	Concurrency int                  `json:"concurrency"`
	// Branches share this pipeline's source listing; each is a pipeline
	// of its own name. Only their own stages are set in them.
	Branches map[string]PipelineSpec `json:"branches,omitempty"`
}
