package ping

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// transaction is one async ingestion: Queued, then Processing, then every
// item Succeeded or Failed at once (ping.md §8 contract). The items are
// validated and written only on that last step, so a client that stops
// polling early has not seen the outcome and the store has not changed.
type transaction struct {
	id     string
	shp    string
	items  []asyncItem
	step   int       // 0 Queued, 1 Processing, 2 finished
	stepAt time.Time // when the current step began
}

type asyncItem struct {
	it      ingestItem
	fields  fieldMap
	status  string // StateSucceeded or StateFailed once finished
	message string
	data    string // JSON of the stored record once Succeeded
}

const stepDone = 2

func (tx *transaction) state() string {
	switch tx.step {
	case 0:
		return StateQueued
	case 1:
		return StateProcessing
	}
	for _, it := range tx.items {
		if it.status == StateFailed {
			return StateFailed
		}
	}
	return StateSucceeded
}

// ingestAsync serves POST /api/ingestion/v2/{PartnerId}/asyncdata: it only
// queues the items and hands back the SPHTransactionId to poll.
func (s *Server) ingestAsync(partner string, body []byte) answer {
	req, _, items, msg := s.parseIngest(partner, body, kindAsync)
	if msg != "" {
		a := s.badRequest(msg)
		a.shp = deref(req.ShippingProcessID)
		return a
	}
	tx := &transaction{id: s.newID(), shp: *req.ShippingProcessID}
	for i, f := range items {
		tx.items = append(tx.items, asyncItem{it: (*req.Data)[i], fields: f})
	}
	s.mu.Lock()
	tx.stepAt = s.opts.Now()
	s.txs[tx.id] = tx
	s.txOrder = append(s.txOrder, tx)
	s.mu.Unlock()
	return answer{status: http.StatusOK, shp: tx.shp, body: envelope{SPHTransactionID: ptr(tx.id)}}
}

func (s *Server) lastStep() int {
	if s.opts.NeverFinish {
		return 1
	}
	return stepDone
}

// tick moves tx forward by the time elapsed, one StatusDelay per step.
// Called with s.mu held.
func (s *Server) tick(tx *transaction, now time.Time) {
	d := s.opts.StatusDelay
	if d <= 0 {
		return
	}
	for tx.step < s.lastStep() && !now.Before(tx.stepAt.Add(d)) {
		tx.stepAt = tx.stepAt.Add(d)
		s.stepForward(tx)
	}
}

// tickAll ticks every unfinished transaction in creation order, so records
// are created in the order they were sent. Called with s.mu held.
func (s *Server) tickAll() {
	if s.opts.StatusDelay <= 0 {
		return
	}
	now := s.opts.Now()
	s.txOrder = slices.DeleteFunc(s.txOrder, func(tx *transaction) bool {
		s.tick(tx, now)
		return tx.step == stepDone
	})
}

func (s *Server) stepForward(tx *transaction) {
	tx.step++
	if tx.step == stepDone {
		s.finish(tx)
	}
}

// Advance moves every unfinished async transaction one state forward
// (Queued → Processing → Succeeded | Failed), writing the records of those
// that finish. With NeverFinish they stop at Processing.
func (s *Server) Advance() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tickAll()
	now := s.opts.Now()
	s.txOrder = slices.DeleteFunc(s.txOrder, func(tx *transaction) bool {
		if tx.step < s.lastStep() {
			tx.stepAt = now
			s.stepForward(tx)
		}
		return tx.step == stepDone
	})
}

// finish validates and writes every item of tx. Called with s.mu held.
func (s *Server) finish(tx *transaction) {
	for i := range tx.items {
		it := &tx.items[i]
		if msg := s.validateReferral(it.fields); msg != "" {
			it.status, it.message = StateFailed, msg
			continue
		}
		r := &referral{
			ID:     s.newID(),
			Number: fmt.Sprintf("REF-IOP-FKE-%09d", len(s.referrals)+1),
			Status: ReferralNew,
			Fields: map[string]*string{},
		}
		for k, v := range it.fields {
			if v != nil {
				v = ptr(*v)
			}
			r.Fields[k] = v
		}
		r.Fields["progres_businessunit"] = ptr(strings.ToLower(r.field("progres_businessunit")))
		for _, old := range s.referrals {
			// The Primero service a referral came from is its business key:
			// a second one for the same service is a duplicate in proGres.
			if old.field("progres_offlineid") == r.field("progres_offlineid") &&
				old.field("progres_orgreferralid") == r.field("progres_orgreferralid") {
				s.Counters().Duplicates.Add(1)
				break
			}
		}
		s.addReferral(r)
		s.Counters().Write(tx.shp + " create")
		stored := map[string]any{}
		for k, v := range r.Fields {
			stored[k] = derefAny(v)
		}
		stored["progres_interoperabilityreferralid"] = r.ID
		stored["progres_interoperabilityreferralnumber"] = r.Number
		stored["progres_interoperabilityreferralstatus"] = r.Status
		b, _ := json.Marshal(stored)
		it.status, it.message, it.data = StateSucceeded, "Record created", string(b)
		s.recordIngested(tx.shp, it.it, it.fields, map[string]any{"RecordId": r.ID})
	}
}

// validateReferral says why an SHP-2731 item cannot be saved, or "".
func (s *Server) validateReferral(f fieldMap) string {
	if k := unknownField(f, createReferralFields); k != "" {
		return fmt.Sprintf("Field '%s' is not mapped for shipping process '%s'", k, SHPCreateReferral)
	}
	if s.opts.FailIngestion != nil {
		flat := make(map[string]string, len(f))
		for k, v := range f {
			flat[k] = deref(v)
		}
		if s.opts.FailIngestion(flat) {
			return "The record was rejected by proGres validation"
		}
		return ""
	}
	for _, k := range createReferralRequired {
		if strings.TrimSpace(f.str(k)) == "" {
			return fmt.Sprintf("Required field '%s' is missing or empty", k)
		}
	}
	lookups := []struct {
		name  string
		known []string
	}{
		{"progres_businessunit", []string{s.opts.BusinessUnitID}},
		{"progres_organizationfrom", []string{s.opts.OrganizationFromID}},
		{"progres_requestedservice", requestedServices},
		{"progres_spneedcategory", spneedCategories},
	}
	for _, l := range lookups {
		v := f.str(l.name)
		if v == "" {
			continue // required ones were checked above
		}
		if id, _ := normGUID(v); !slices.Contains(l.known, id) {
			return fmt.Sprintf("%s '%s' does not match a record in proGres", l.name, v)
		}
	}
	if v := f.str("progres_pocsex"); v != "" {
		if n, err := strconv.Atoi(v); err != nil || sexNames[n] == "" {
			return fmt.Sprintf("'%s' is not a valid option set value for progres_pocsex", v)
		}
	}
	for _, k := range []string{"progres_referraldate", "progres_pocdateofbirth"} {
		if v := f.str(k); v != "" && !validDate(v) {
			return fmt.Sprintf("'%s' is not a valid date (YYYY-MM-DD) for %s", v, k)
		}
	}
	return ""
}

type statusRequest struct {
	ShippingProcessID *string `json:"ShippingProcessId"`
	PartnerID         *string `json:"PartnerId"`
	InteropID         *string `json:"InteropID"`
	SPHTransactionID  *string `json:"SPHTransactionId"`
}

// statusItem is one checkstatus item. Data comes before Status on purpose:
// the job's repair routine only recognises an unescaped Data object that is
// followed by a comma.
type statusItem struct {
	ExternalID *string `json:"ExternalId"`
	Data       *string `json:"Data"`
	Status     string  `json:"Status"`
	Message    *string `json:"Message"`
}

// checkStatus serves POST /primes/ingestion/checkstatus/v1/pingdata.
func (s *Server) checkStatus(_ string, body []byte) answer {
	var req statusRequest
	if msg := decodeBody(body, &req); msg != "" {
		return s.badRequest(msg)
	}
	shp := deref(req.ShippingProcessID)
	fail := func(msg string) answer {
		a := s.badRequest(msg)
		a.shp = shp
		return a
	}
	if msg := s.checkDeployment(req.PartnerID, true, req.InteropID, ""); msg != "" {
		return fail(msg)
	}
	if _, msg := lookupSHP(req.ShippingProcessID, kindAsync); msg != "" {
		return fail(msg)
	}
	if deref(req.SPHTransactionID) == "" {
		return fail("SPHTransactionId is required")
	}
	id := strings.ToLower(strings.TrimSpace(*req.SPHTransactionID))

	s.mu.Lock()
	// Tick everything, not just this one, so records are created in the
	// order they were sent whatever order the client polls in.
	s.tickAll()
	tx := s.txs[id]
	if tx == nil || tx.shp != shp {
		s.mu.Unlock()
		return answer{status: http.StatusOK, shp: shp, body: envelope{
			ErrorMessage:     ptr("Transaction not found"),
			SPHTransactionID: req.SPHTransactionID,
		}}
	}
	items := make([]statusItem, len(tx.items))
	for i, it := range tx.items {
		st := statusItem{ExternalID: it.it.ExternalID, Status: tx.state()}
		switch tx.step {
		case 0:
			st.Message = ptr("Queued for processing")
		case 1:
			st.Message = ptr("Processing")
		default:
			st.Status, st.Message = it.status, ptr(it.message)
			if it.data != "" {
				st.Data = ptr(it.data)
			}
		}
		items[i] = st
	}
	s.mu.Unlock()

	env := envelope{RecordCount: ptr(len(items)), SPHTransactionID: ptr(tx.id)}
	switch {
	case s.opts.StatusInnerJSONUnescaped:
		env.Data = unescapedItems(items)
	case s.opts.StatusDataAsString:
		b, _ := json.Marshal(items)
		env.Data = string(b)
	default:
		env.Data = items
	}
	return answer{status: http.StatusOK, shp: shp, body: env}
}

// unescapedItems writes the items as PING has been seen to: a JSON array in
// a string, whose items' Data objects are pasted in without escaping their
// quotes, so the text inside the string is not valid JSON.
func unescapedItems(items []statusItem) string {
	var b strings.Builder
	b.WriteByte('[')
	for i, it := range items {
		if i > 0 {
			b.WriteByte(',')
		}
		ext, _ := json.Marshal(it.ExternalID)
		st, _ := json.Marshal(it.Status)
		msg, _ := json.Marshal(it.Message)
		data := "null"
		if it.Data != nil {
			data = `"` + *it.Data + `"`
		}
		fmt.Fprintf(&b, `{"ExternalId":%s,"Data":%s,"Status":%s,"Message":%s}`, ext, data, st, msg)
	}
	b.WriteByte(']')
	return b.String()
}

// Transactions returns every async transaction's state by SPHTransactionId.
// A transaction is Failed when any of its items failed.
func (s *Server) Transactions() map[string]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tickAll()
	out := make(map[string]string, len(s.txs))
	for id, tx := range s.txs {
		out[id] = tx.state()
	}
	return out
}
