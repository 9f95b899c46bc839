package ping

import (
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"hash/fnv"
	"iter"
	"net/http"
	"slices"
	"sort"
	"strings"
)

// shpKind says which endpoint a shipping process belongs to.
type shpKind int

const (
	kindRetrieve shpKind = iota
	kindSync
	kindAsync
)

// rowKey orders rows within one shipping process and is what a paging
// cookie remembers: the store sequence of the record, then the join index.
type rowKey struct{ seq, sub int }

func (a rowKey) less(b rowKey) bool { return a.seq < b.seq || a.seq == b.seq && a.sub < b.sub }

// rowSource yields the rows of a retrieve in key order, each built only when
// it lands on the page. It runs with s.mu held.
type rowSource func(s *Server, ids []string) iter.Seq2[rowKey, func() row]

// shipping is one entry of the SHP registry (ping.md §12): which endpoint
// serves it, its parameters or fields, and how it reads or writes the store.
type shipping struct {
	kind shpKind
	// params are the query parameters of a retrieve; the query is fixed, so
	// each is required and no other is accepted.
	params []string
	rows   rowSource
	// keyFields must be present and non-empty in every item of a sync
	// ingestion, or the whole body is refused.
	keyFields []string
	fields    map[string]bool
	apply     func(s *Server, it ingestItem, f fieldMap) itemResult
}

const recordIDs = "{record_ids}"

// registry is the closed set of shipping processes the fake serves.
var registry = map[string]shipping{
	SHPPendingInterventions: {kind: kindRetrieve, rows: pendingSource},
	SHPInterventionDetail:   {kind: kindRetrieve, params: []string{recordIDs}, rows: detailSource},
	SHPDecisions:            {kind: kindRetrieve, rows: decisionSource},
	SHPDecisionDetail:       {kind: kindRetrieve, params: []string{recordIDs}, rows: decisionDetailSource},
	SHPTransferStatus: {kind: kindSync, fields: transferStatusFields, apply: applyTransferStatus,
		keyFields: []string{"progres_lpinterventionid", "progres_businessunit"}},
	SHPMarkSynced: {kind: kindSync, fields: markSyncedFields, apply: applyMarkSynced,
		keyFields: []string{"progres_interoperabilityreferralid"}},
	SHPCreateReferral: {kind: kindAsync, fields: createReferralFields},
}

func pendingSource(s *Server, _ []string) iter.Seq2[rowKey, func() row] {
	return func(yield func(rowKey, func() row) bool) {
		for _, in := range s.interventions {
			if !s.opts.IsPending(in.TransferStatus) {
				continue
			}
			if !yield(rowKey{in.seq, 0}, func() row { return s.pendingRow(in) }) {
				return
			}
		}
	}
}

func detailSource(s *Server, ids []string) iter.Seq2[rowKey, func() row] {
	var found []*intervention
	for _, id := range ids {
		if in, ok := s.byIntervID[id]; ok {
			found = append(found, in)
		}
	}
	sort.Slice(found, func(i, j int) bool { return found[i].seq < found[j].seq })
	return func(yield func(rowKey, func() row) bool) {
		for _, in := range found {
			for i, r := range s.detailRows(in) {
				if !yield(rowKey{in.seq, i}, func() row { return r }) {
					return
				}
			}
		}
	}
}

func decisionSource(s *Server, _ []string) iter.Seq2[rowKey, func() row] {
	return func(yield func(rowKey, func() row) bool) {
		for _, r := range s.referrals {
			if s.opts.HideSyncedDecisions && r.Status == ReferralSynced {
				continue
			}
			if !yield(rowKey{r.seq, 0}, func() row { return decisionRow(r) }) {
				return
			}
		}
	}
}

func decisionDetailSource(s *Server, ids []string) iter.Seq2[rowKey, func() row] {
	var found []*referral
	for _, id := range ids {
		if r, ok := s.byReferralID[id]; ok {
			found = append(found, r)
		}
	}
	sort.Slice(found, func(i, j int) bool { return found[i].seq < found[j].seq })
	return func(yield func(rowKey, func() row) bool) {
		for _, r := range found {
			if !yield(rowKey{r.seq, 0}, func() row { return decisionDetailRow(r) }) {
				return
			}
		}
	}
}

// decodeBody unmarshals a JSON body. encoding/json matches keys without
// regard to case, which is how PING accepts both InteropID and InteropId.
func decodeBody(b []byte, v any) string {
	err := json.Unmarshal(b, v)
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case err == nil:
		return ""
	case errors.As(err, &se):
		return fmt.Sprintf("The request body is not valid JSON (offset %d)", se.Offset)
	case errors.As(err, &te):
		if te.Field == "" {
			return "The request body must be a JSON object"
		}
		return fmt.Sprintf("The value of '%s' has the wrong type (JSON %s)", te.Field, te.Value)
	default:
		return "The request body is not valid JSON"
	}
}

func deref(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

// checkDeployment checks the identifiers every body carries. pathPartner is
// the partner segment of an ingestion URL, "" elsewhere; the body's
// PartnerId is required only where the observed bodies always send it.
func (s *Server) checkDeployment(partner *string, partnerRequired bool, interop *string, pathPartner string) string {
	if pathPartner != "" && pathPartner != s.opts.PartnerID {
		return fmt.Sprintf("PartnerId '%s' in the path is not valid for this subscription", pathPartner)
	}
	switch {
	case partner == nil && partnerRequired:
		return "PartnerId is required"
	case partner != nil && pathPartner != "" && *partner != pathPartner:
		return fmt.Sprintf("PartnerId '%s' in the body does not match PartnerId '%s' in the path", *partner, pathPartner)
	case partner != nil && *partner != s.opts.PartnerID:
		return fmt.Sprintf("PartnerId '%s' is not valid for this subscription", *partner)
	}
	switch {
	case interop == nil || *interop == "":
		return "InteropID is required"
	case *interop != s.opts.InteropID:
		return fmt.Sprintf("InteropID '%s' is not configured for PartnerId '%s'", *interop, s.opts.PartnerID)
	}
	return ""
}

// lookupSHP finds a shipping process of the wanted kind.
func lookupSHP(id *string, want shpKind) (shipping, string) {
	if id == nil || *id == "" {
		return shipping{}, "ShippingProcessId is required"
	}
	sp, ok := registry[*id]
	if !ok {
		return shipping{}, fmt.Sprintf("Shipping process '%s' is not configured for this partner", *id)
	}
	if sp.kind != want {
		names := map[shpKind]string{kindRetrieve: "a retrieve", kindSync: "a synchronous ingestion", kindAsync: "an asynchronous ingestion"}
		return shipping{}, fmt.Sprintf("Shipping process '%s' is %s process and cannot be used on this endpoint", *id, names[sp.kind])
	}
	return sp, ""
}

type retrieveRequest struct {
	ShippingProcessID *string          `json:"ShippingProcessId"`
	PartnerID         *string          `json:"PartnerId"`
	InteropID         *string          `json:"InteropID"`
	APIVersion        *string          `json:"APIVersion"`
	QueryParameters   []queryParameter `json:"QueryParameters"`
	PagingCookie      *string          `json:"PagingCookie"`
	PageNumber        *int             `json:"PageNumber"`
}

type queryParameter struct {
	ParameterName *string `json:"ParameterName"`
	Value         *string `json:"Value"`
}

// parseRecordIDs accepts one GUID or a bracketed list without quotes,
// "[guid1,guid2]" (ping.md §6), and returns them lower-cased and sorted.
func parseRecordIDs(v string) ([]string, string) {
	v = strings.TrimSpace(v)
	parts := []string{v}
	if inner, ok := strings.CutPrefix(v, "["); ok {
		inner, ok = strings.CutSuffix(inner, "]")
		if !ok {
			return nil, "Value of query parameter '{record_ids}' has an unclosed '['"
		}
		parts = strings.Split(inner, ",")
	}
	ids := make([]string, 0, len(parts))
	for _, p := range parts {
		id, ok := normGUID(p)
		if !ok {
			return nil, fmt.Sprintf("Value of query parameter '{record_ids}' is not a GUID or a bracketed list of GUIDs: %q", strings.TrimSpace(p))
		}
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return slices.Compact(ids), ""
}

// pagingCookie is the opaque cookie, shaped like Dataverse's FetchXML paging
// cookie. It remembers the last row handed out (keyset paging), so rows
// removed from a queue between pages do not shift the rest out of sight, and
// a hash of the query, so it cannot be replayed against another one.
type pagingCookie struct {
	XMLName xml.Name `xml:"cookie"`
	Page    int      `xml:"page,attr"`
	Query   string   `xml:"query,attr"`
	Last    struct {
		Seq int `xml:"seq,attr"`
		Sub int `xml:"sub,attr"`
	} `xml:"last"`
}

func queryHash(shp string, params map[string]string) string {
	names := make([]string, 0, len(params))
	for n := range params {
		names = append(names, n)
	}
	slices.Sort(names)
	h := fnv.New64a()
	h.Write([]byte(shp))
	for _, n := range names {
		fmt.Fprintf(h, "\x00%s=%s", n, params[n])
	}
	return fmt.Sprintf("%016x", h.Sum64())
}

func (s *Server) retrieve(_ string, body []byte) answer {
	var req retrieveRequest
	if msg := decodeBody(body, &req); msg != "" {
		return s.badRequest(msg)
	}
	fail := func(msg string) answer {
		a := s.badRequest(msg)
		a.shp = deref(req.ShippingProcessID)
		return a
	}
	if msg := s.checkDeployment(req.PartnerID, true, req.InteropID, ""); msg != "" {
		return fail(msg)
	}
	sp, msg := lookupSHP(req.ShippingProcessID, kindRetrieve)
	if msg != "" {
		return fail(msg)
	}
	shp := *req.ShippingProcessID
	if v := req.APIVersion; v != nil && !strings.EqualFold(*v, "V3") {
		return fail(fmt.Sprintf("APIVersion '%s' is not supported by this endpoint; use V3", *v))
	}

	// Parameters: the query is fixed per shipping process, so an undefined
	// one is refused (the job's "Query params fails" note) and a defined one
	// is required.
	params := map[string]string{}
	var ids []string
	for i, qp := range req.QueryParameters {
		name := deref(qp.ParameterName)
		switch {
		case name == "":
			return fail(fmt.Sprintf("QueryParameters[%d].ParameterName is required", i))
		case !slices.Contains(sp.params, name):
			return fail(fmt.Sprintf("Query parameter '%s' is not defined for shipping process '%s'", name, shp))
		case qp.Value == nil || strings.TrimSpace(*qp.Value) == "":
			return fail(fmt.Sprintf("Query parameter '%s' needs a Value", name))
		}
		if _, dup := params[name]; dup {
			return fail(fmt.Sprintf("Query parameter '%s' is given twice", name))
		}
		if name == recordIDs {
			var msg string
			if ids, msg = parseRecordIDs(*qp.Value); msg != "" {
				return fail(msg)
			}
			params[name] = strings.Join(ids, ",")
		}
	}
	for _, name := range sp.params {
		if _, ok := params[name]; !ok {
			return fail(fmt.Sprintf("Query parameter '%s' is required by shipping process '%s'", name, shp))
		}
	}

	// Paging (ping.md §5 contract).
	hash := queryHash(shp, params)
	var after rowKey
	page := 1
	if c := deref(req.PagingCookie); c != "" {
		var pc pagingCookie
		if err := xml.Unmarshal([]byte(c), &pc); err != nil || pc.Page < 1 {
			return fail("PagingCookie is not a valid paging cookie")
		}
		if pc.Query != hash {
			return fail("PagingCookie was issued for a different ShippingProcessId or QueryParameters")
		}
		if req.PageNumber == nil || *req.PageNumber != pc.Page+1 {
			return fail(fmt.Sprintf("PageNumber must be %d with this PagingCookie", pc.Page+1))
		}
		after, page = rowKey{pc.Last.Seq, pc.Last.Sub}, pc.Page+1
	} else if req.PageNumber != nil && *req.PageNumber > 1 {
		return fail(fmt.Sprintf("PagingCookie is required to request page %d", *req.PageNumber))
	}

	s.mu.Lock()
	if shp == SHPDecisions || shp == SHPDecisionDetail {
		// Referrals created by async ingestion that are due must be visible.
		s.tickAll()
		if s.opts.AutoDecide && shp == SHPDecisions && page == 1 {
			s.decideNew()
		}
	}
	var rows []row
	var last rowKey
	more := false
	for k, build := range sp.rows(s, ids) {
		if !after.less(k) {
			continue
		}
		if len(rows) == s.opts.PageSize {
			more = true
			break
		}
		rows = append(rows, build())
		last = k
	}
	s.mu.Unlock()
	s.inj.Counters().Served("POST "+RetrievePath, len(rows))

	env := envelope{SPHTransactionID: ptr(s.newID())}
	if len(rows) == 0 {
		switch s.opts.Empty {
		case EmptyNoDataString:
			env.Data = "No Data Available"
		case EmptyNull:
			env.Data = nil
		case EmptyArray:
			env.Data, env.RecordCount = []row{}, ptr(0)
		}
	} else {
		env.Data, env.RecordCount = rows, ptr(len(rows))
	}
	// A single page keeps the observed null / 0 / false.
	env.PagingSummary = &pagingSummary{}
	if page > 1 || more {
		pc := pagingCookie{Page: page, Query: hash}
		pc.Last.Seq, pc.Last.Sub = last.seq, last.sub
		if len(rows) == 0 {
			pc.Last.Seq, pc.Last.Sub = after.seq, after.sub
		}
		b, _ := xml.Marshal(pc)
		env.PagingSummary = &pagingSummary{PagingCookie: ptr(string(b)), PageNumber: page, IsMoreRecordsAvailable: more}
	}
	pn := 0
	if req.PageNumber != nil {
		pn = *req.PageNumber
	}
	return answer{status: http.StatusOK, body: env, shp: shp, page: pn}
}
