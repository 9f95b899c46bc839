package ping

import (
	"time"

	"casesync/internal/fakes/faults"
)

// Fixed token-endpoint coordinates. A real deployment has its own B2C
// tenant and policy; the fake serves exactly one so a spec pointed at it
// proves it builds the B2C path from configuration rather than by accident.
const (
	// TokenTenant is the B2C tenant name in TokenPath.
	TokenTenant = "casesyncfake"
	// TokenPolicy is the B2C user-flow policy in TokenPath.
	TokenPolicy = "b2c_1_casesync-fake-ropc"
	// TokenPath is the password-grant token endpoint, shaped like
	// /{tenant}.onmicrosoft.com/{policy}/oauth2/v2.0/token.
	TokenPath = "/" + TokenTenant + ".onmicrosoft.com/" + TokenPolicy + "/oauth2/v2.0/token"
)

// API paths (ping.md §4, §7, §8). The ingestion paths carry the partner id
// as a path segment: IngestionPathPrefix + PartnerId + "/data" or "/asyncdata".
const (
	// RetrievePath is the paged read endpoint.
	RetrievePath = "/primes/fetch/paging/v3/retrievedatawithpaging"
	// CheckStatusPath polls an async ingestion transaction.
	CheckStatusPath = "/primes/ingestion/checkstatus/v1/pingdata"
	// IngestionPathPrefix starts both ingestion paths.
	IngestionPathPrefix = "/api/ingestion/v2/"
)

// Shipping process ids of the UAT deployment (ping.md §1). The fake
// serves these and no others.
const (
	// SHPPendingInterventions lists interventions pending transfer (Flow 1.1).
	SHPPendingInterventions = "SHP-2747"
	// SHPInterventionDetail returns the joined detail rows of interventions.
	SHPInterventionDetail = "SHP-2358"
	// SHPTransferStatus sets an intervention's Primero transfer status (sync).
	SHPTransferStatus = "SHP-2748"
	// SHPCreateReferral creates an interoperability referral (async).
	SHPCreateReferral = "SHP-2731"
	// SHPDecisions lists interoperability referrals with their status.
	SHPDecisions = "SHP-2795"
	// SHPDecisionDetail returns one interoperability referral in full.
	SHPDecisionDetail = "SHP-2796"
	// SHPMarkSynced marks an interoperability referral synced (sync).
	SHPMarkSynced = "SHP-2284"
)

// Option-set codes (ping.md §9). Responses carry them as integers,
// ingestion Values as strings.
const (
	// TransferDeliveryFail is progres_primerotransferstatus "Delivery Fail".
	TransferDeliveryFail = 125080001
	// TransferPendingAck is "Pending Acknowledgement", written by Flow 1.1.
	TransferPendingAck = 125080002
	// TransferAcknowledged means accepted in Primero.
	TransferAcknowledged = 125080003
	// TransferRejected means rejected in Primero.
	TransferRejected = 125080004

	// ReferralNew is progres_interoperabilityreferralstatus "new / awaiting
	// decision" (inferred), the status SHP-2731 creates referrals with.
	ReferralNew = 125080000
	// ReferralAccepted is a proGres acceptance, picked up by Flow 2.2.
	ReferralAccepted = 125080001
	// ReferralRejected is a proGres rejection, picked up by Flow 2.2.
	ReferralRejected = 125080002
	// ReferralSynced is written by Flow 2.2 once Primero has the decision.
	ReferralSynced = 125080003
	// ReferralUnknownCode is a status no table knows; one seeded decision
	// carries it so a connector's handling of unknown codes is testable.
	ReferralUnknownCode = 125080009
)

// Async transaction states (ping.md §8 contract).
const (
	StateQueued     = "Queued"
	StateProcessing = "Processing"
	StateSucceeded  = "Succeeded"
	StateFailed     = "Failed"
)

// Defaults for Options.
const (
	DefaultPartnerID          = "PNR-1363"
	DefaultInteropID          = "INT-1436"
	DefaultClientID           = "5b0c6d1e-7f2a-4c3b-9d8e-0a1b2c3d4e5f"
	DefaultUsername           = "ping-api@casesync.example.org"
	DefaultPassword           = "fake-ping-password"
	DefaultSubscriptionKey    = "0123456789abcdef0123456789abcdef"
	DefaultScope              = "https://primespingb2cuat.onmicrosoft.com/apimurls/API.Read"
	DefaultBusinessUnitID     = "577ccdf6-86de-e811-80d8-001dd8b71fe3"
	DefaultBusinessUnitName   = "Kenya - Dadaab"
	DefaultOrganizationFromID = "c00582a6-d8f6-f011-8406-6045bd8ea5fb"
	DefaultTokenTTL           = time.Hour
	DefaultPageSize           = 50
)

// EmptyMode selects how a retrieve with no rows is answered. PING has been
// seen answering "No Data Available" (Flow 2.2 guards for it) and Flow 1.1
// only goes on when RecordCount is not null, so connectors must accept all
// three; the switch lets a test pick one.
type EmptyMode int

const (
	// EmptyNoDataString answers Data "No Data Available", RecordCount null.
	EmptyNoDataString EmptyMode = iota
	// EmptyNull answers Data null, RecordCount null.
	EmptyNull
	// EmptyArray answers Data [], RecordCount 0.
	EmptyArray
)

// Options configures a fake PING. The zero value is a working UAT-like
// deployment with no seeded data.
type Options struct {
	// Interventions is the number of seeded interventions pending transfer
	// (SHP-2747 rows, with SHP-2358 detail rows), deterministic from Seed.
	Interventions int
	// Decisions is the number of seeded interoperability referrals
	// (SHP-2795 rows, SHP-2796 details) that came from Primero and carry a
	// proGres status; see doc.go for the mix.
	Decisions int
	// Seed makes the seeded data and every generated id repeatable.
	Seed uint64
	// Clean seeds none of the designed edge cases of doc.go (an
	// intervention type off the allow-list, no date of birth, an unknown
	// status code, …): every row is drawn like the rest, so a demo runs
	// clean. Tests of the refusal paths keep the default.
	Clean bool
	// Transferred are interventions already transferred to Primero (the
	// Primero side holds cases made from them), so a transfer status
	// written for them applies. They are not pending: SHP-2747 does not
	// list them.
	Transferred []TransferredIntervention
	// AutoDecide has a proGres officer decide every new referral (those
	// SHP-2731 created) when SHP-2795 is next listed: two accepted, the
	// third rejected with a reason. Like the fake OSCaR's AutoAccept, it
	// gives the decision flow something real to carry.
	AutoDecide bool

	// PartnerID and InteropID identify the deployment; defaults
	// DefaultPartnerID and DefaultInteropID.
	PartnerID, InteropID string
	// ClientID, Username, Password, SubscriptionKey are the credentials the
	// fake accepts; defaults are the Default* constants.
	ClientID, Username, Password, SubscriptionKey string
	// Scope must appear among the space-separated scopes of a token
	// request; default DefaultScope.
	Scope string
	// TokenTTL is expires_in; default one hour.
	TokenTTL time.Duration
	// TokenExpiresInAsString sends expires_in as a JSON string, as some
	// Azure AD endpoints do, so a connector can be tested against both.
	TokenExpiresInAsString bool

	// BusinessUnitID and BusinessUnitName are the proGres business unit of
	// every seeded intervention, and the only business unit SHP-2731 accepts.
	BusinessUnitID, BusinessUnitName string
	// OrganizationFromID is the only progres_organizationfrom SHP-2731 accepts.
	OrganizationFromID string

	// PageSize is the number of rows per retrieve page; default 50.
	PageSize int
	// Empty selects the answer to a retrieve with no rows.
	Empty EmptyMode
	// IsPending decides whether an intervention with this
	// progres_primerotransferstatus (0 = empty) is listed by SHP-2747.
	// Default: empty or Delivery Fail (ping.md §12, inferred).
	IsPending func(transferStatus int) bool
	// HideSyncedDecisions drops referrals with status ReferralSynced from
	// SHP-2795. By default SHP-2795 lists every referral, as ping.md §10
	// infers from the job's client-side filter, so a connector that forgets
	// to filter is caught.
	HideSyncedDecisions bool

	// StatusDelay is how long an async transaction stays in each of Queued
	// and Processing before moving on; 0 means it moves only via Advance.
	StatusDelay time.Duration
	// FailIngestion decides whether an async item fails; it receives the
	// item's fields (null as ""). Default: a required field missing or
	// empty, an unknown GUID, or a bad option-set or date value.
	FailIngestion func(fields map[string]string) bool
	// NeverFinish keeps every async transaction Processing forever.
	NeverFinish bool
	// StatusDataAsString sends checkstatus Data as a string holding the
	// JSON array, as PING has been seen to do.
	StatusDataAsString bool
	// StatusInnerJSONUnescaped writes each item's Data object into that
	// string without escaping its quotes, as PING has been seen to do. It
	// implies StatusDataAsString: an unescaped object inside a real JSON
	// array would make the whole body invalid JSON, which the observed
	// client could not have parsed at all.
	StatusInnerJSONUnescaped bool

	// Faults are the initial fault switches; change them with Faults().Set.
	Faults faults.Config
	// Now is the clock for tokens, transaction timing and write dates;
	// default time.Now. Seeded dates never depend on it.
	Now func() time.Time
	// NewID returns a fresh lower-case GUID for transactions, tokens and
	// created records; default a stream derived from Seed. It is called
	// from concurrent requests, so it must be safe for concurrent use.
	NewID func() string
}

func (o Options) withDefaults() Options {
	def := func(p *string, v string) {
		if *p == "" {
			*p = v
		}
	}
	def(&o.PartnerID, DefaultPartnerID)
	def(&o.InteropID, DefaultInteropID)
	def(&o.ClientID, DefaultClientID)
	def(&o.Username, DefaultUsername)
	def(&o.Password, DefaultPassword)
	def(&o.SubscriptionKey, DefaultSubscriptionKey)
	def(&o.Scope, DefaultScope)
	def(&o.BusinessUnitID, DefaultBusinessUnitID)
	def(&o.BusinessUnitName, DefaultBusinessUnitName)
	def(&o.OrganizationFromID, DefaultOrganizationFromID)
	if o.TokenTTL <= 0 {
		o.TokenTTL = DefaultTokenTTL
	}
	if o.PageSize <= 0 {
		o.PageSize = DefaultPageSize
	}
	if o.IsPending == nil {
		o.IsPending = func(st int) bool { return st == 0 || st == TransferDeliveryFail }
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.StatusInnerJSONUnescaped {
		o.StatusDataAsString = true
	}
	o.Interventions = max(o.Interventions, 0)
	o.Decisions = max(o.Decisions, 0)
	return o
}

// TransferredIntervention names an intervention Primero already holds: its
// progres_lpinterventionid, progres_interventionnumber and business unit.
type TransferredIntervention struct{ ID, Number, BusinessUnit string }
