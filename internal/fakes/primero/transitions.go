package primero

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
)

// Transition types and statuses (primero.md §7).
const (
	typeReferral        = "Referral"
	typeTransfer        = "Transfer"
	typeAssign          = "Assign"
	typeTransferRequest = "TransferRequest"

	statusInProgress = "in_progress"
	statusAccepted   = "accepted"
	statusRejected   = "rejected"
	statusDone       = "done"
	statusRevoked    = "revoked"
)

// transition is a referral, transfer or assignment of a case. Nullable
// text columns are pointers: "every non-null column" is what Primero
// serialises, and "" is not null (service_record_id may be "").
type transition struct {
	id, typ, status           string
	record                    *record
	to, toAgency, toRemote    string
	by, byAgency              string
	remote, consentOverridden bool
	consentIndividual         bool
	service, serviceRecordID  *string
	notes                     *string
	rejectedReason            string
	rejectionNote             string
	authorizedRole            string
	created, responded        int64
}

// live transitions still bind their recipient to the case.
func (t *transition) live() bool { return t.status == statusInProgress || t.status == statusAccepted }

func transitionFromJSON(m map[string]any, r *record) *transition {
	str := func(k string) string { s, _ := m[k].(string); return s }
	ptr := func(k string) *string {
		if s, ok := m[k].(string); ok {
			return &s
		}
		return nil
	}
	b := func(k string) bool { v, _ := m[k].(bool); return v }
	t := &transition{
		id: str("id"), typ: str("type"), status: str("status"), record: r, to: str("transitioned_to"),
		toAgency: str("transitioned_to_agency"), toRemote: str("transitioned_to_remote"), by: str("transitioned_by"),
		byAgency: str("transitioned_by_user_agency"), remote: b("remote"), consentOverridden: b("consent_overridden"),
		consentIndividual: b("consent_individual_transfer"), service: ptr("service"), serviceRecordID: ptr("service_record_id"),
		notes: ptr("notes"), rejectedReason: str("rejected_reason"), rejectionNote: str("rejection_note"),
		authorizedRole: str("authorized_role_unique_id"),
		created:        parseMS(m["created_at"], r.created), responded: parseMS(m["responded_at"], 0),
	}
	if t.typ == "" {
		t.typ = typeReferral
	}
	if t.status == "" {
		t.status = statusInProgress
	}
	return t
}

// renderTransition writes the non-null columns and the two computed keys.
func (s *Server) renderTransition(t *transition, u *user) *object {
	o := newObject()
	o.add("id", t.id)
	o.add("type", t.typ)
	o.add("status", t.status)
	o.add("record_id", t.record.id)
	o.add("record_type", "case")
	o.add("transitioned_to", t.to)
	if t.toAgency != "" {
		o.add("transitioned_to_agency", t.toAgency)
	}
	if t.toRemote != "" {
		o.add("transitioned_to_remote", t.toRemote)
	}
	if t.notes != nil {
		o.add("notes", *t.notes)
	}
	o.add("transitioned_by", t.by)
	if t.byAgency != "" {
		o.add("transitioned_by_user_agency", t.byAgency)
	}
	if t.service != nil {
		o.add("service", *t.service)
	}
	if t.serviceRecordID != nil {
		o.add("service_record_id", *t.serviceRecordID)
	}
	if t.authorizedRole != "" {
		o.add("authorized_role_unique_id", t.authorizedRole)
	}
	o.add("remote", t.remote)
	o.add("consent_overridden", t.consentOverridden)
	o.add("consent_individual_transfer", t.consentIndividual)
	if t.rejectedReason != "" {
		o.add("rejected_reason", t.rejectedReason)
	}
	if t.rejectionNote != "" {
		o.add("rejection_note", t.rejectionNote)
	}
	o.add("created_at", fmtMS(t.created))
	if t.responded != 0 {
		o.add("responded_at", fmtMS(t.responded))
	}
	o.add("record_access_denied", !s.inScope(u, s.docOf(t.record)))
	o.add("user_can_accept_or_reject", t.status == statusInProgress && t.to == u.UserName &&
		(t.typ == typeReferral || t.typ == typeTransfer))
	return o
}

// transitionsFor lists what u may see of a case's transitions: the owner
// and `all` users see every one, a recipient only its own.
func (s *Server) transitionsFor(r *record, u *user, types map[string]bool) []*transition {
	d := s.docOf(r)
	seeAll := u.role.GroupPermission == "all" || strOf(d["owned_by"]) == u.UserName
	recipient := false
	for _, t := range r.trans {
		if t.to == u.UserName {
			recipient = true
		}
	}
	var out []*transition
	for _, t := range r.trans {
		if len(types) > 0 && !types[t.typ] {
			continue
		}
		if !seeAll && recipient && t.to != u.UserName {
			continue
		}
		out = append(out, t)
	}
	return out
}

// caseFor loads the case of a transition route and checks that u may read
// it; it writes the 404/403 itself. Callers hold s.mu.
func (s *Server) caseFor(w http.ResponseWriter, r *http.Request, u *user) *record {
	id := r.PathValue("id")
	rec := s.byID[id]
	if rec == nil {
		notFound(w, r, fmt.Sprintf("Couldn't find Child with 'id'=%s", id))
		return nil
	}
	if !u.role.can("read") || !s.inScope(u, s.docOf(rec)) {
		forbidden(w, r)
		return nil
	}
	return rec
}

func (s *Server) listTransitions(typ string) func(http.ResponseWriter, *http.Request, *user) {
	return func(w http.ResponseWriter, r *http.Request, u *user) {
		s.mu.RLock()
		defer s.mu.RUnlock()
		rec := s.caseFor(w, r, u)
		if rec == nil {
			return
		}
		types := map[string]bool{}
		if typ != "" {
			types[typ] = true
		} else if v := r.URL.Query().Get("types"); v != "" {
			for _, t := range strings.Split(v, ",") {
				types[strings.TrimSpace(t)] = true
			}
		}
		var items []json.RawMessage
		for _, t := range s.transitionsFor(rec, u, types) {
			items = append(items, s.renderTransition(t, u).bytes())
		}
		writeRaw(w, http.StatusOK, append(append([]byte(`{"data":`), rawList(items)...), '}'))
	}
}

// transitionError is a 422 from a model validation of a transition: the
// detail names the field and the message is a list of i18n keys.
type transitionError struct{ detail, key string }

func (e *transitionError) Error() string { return e.key }

func writeTransitionError(w http.ResponseWriter, r *http.Request, err error) {
	var te *transitionError
	if errors.As(err, &te) {
		writeErrors(w, r, http.StatusUnprocessableEntity, []string{te.key}, te.detail)
		return
	}
	writeErrors(w, r, http.StatusInternalServerError, err.Error(), nil)
}

// referralRequest is the body of POST …/referrals and …/transfers.
type referralRequest struct {
	TransitionedTo         string  `json:"transitioned_to"`
	TransitionedToAgency   string  `json:"transitioned_to_agency"`
	TransitionedToRemote   string  `json:"transitioned_to_remote"`
	Notes                  *string `json:"notes"`
	Service                *string `json:"service"`
	ServiceRecordID        *string `json:"service_record_id"`
	Remote                 bool    `json:"remote"`
	ConsentOverridden      bool    `json:"consent_overridden"`
	ConsentIndividual      bool    `json:"consent_individual_transfer"`
	AuthorizedRoleUniqueID string  `json:"authorized_role_unique_id"`
}

// newTransition validates and applies a referral or transfer from u on
// rec. Callers hold s.mu for writing.
func (s *Server) newTransition(rec *record, u *user, typ string, req referralRequest) (*transition, []string, error) {
	d := s.docOf(rec)
	mod := strOf(d["module_id"])
	consent, _ := d["consent_for_services"].(bool)
	disclosure, _ := d["disclosure_other_orgs"].(bool)
	ok := consent && disclosure
	switch {
	case typ == typeTransfer:
		ok = disclosure
	case mod == "primeromodule-gbv":
		ok = consent
	}
	if !ok && !req.ConsentOverridden {
		return nil, nil, &transitionError{detail: "consent", key: "transition.errors.consent"}
	}
	receive := "receive_referral"
	if typ == typeTransfer {
		receive = "receive_transfer"
	}
	to := s.userByName[req.TransitionedTo]
	if !req.Remote {
		if to == nil || to.Disabled || !to.role.can(receive) || !slices.Contains(to.role.Modules, mod) || to == u {
			return nil, nil, &transitionError{detail: "transitioned_to", key: "transition.errors.to_user_can_receive"}
		}
	}
	before := deepCopy(s.ownDoc(rec)).(map[string]any)
	t := &transition{
		id: s.contentID("transition", []any{rec.id, typ, req}), typ: typ, status: statusInProgress, record: rec, to: req.TransitionedTo,
		toAgency: req.TransitionedToAgency, toRemote: req.TransitionedToRemote, by: u.UserName,
		remote: req.Remote, consentOverridden: req.ConsentOverridden, consentIndividual: req.ConsentIndividual,
		service: req.Service, serviceRecordID: req.ServiceRecordID, notes: req.Notes,
		authorizedRole: req.AuthorizedRoleUniqueID, created: s.now().UnixMilli(),
	}
	if u.agency != nil {
		t.byAgency = u.agency.UniqueID
	}
	if t.toAgency == "" && to != nil && to.agency != nil {
		t.toAgency = to.agency.UniqueID
	}
	rec.trans = append(rec.trans, t)
	s.refByID[t.id] = t
	doc := rec.doc
	if typ == typeReferral {
		if t.serviceRecordID != nil {
			for _, row := range anySlice(doc["services_section"]) {
				if m, ok := row.(map[string]any); ok && strOf(m["unique_id"]) == *t.serviceRecordID {
					m["service_status_referred"] = true
				}
			}
		}
		if !t.remote {
			doc["assigned_user_names"] = toAnyStrings(uniqueStrings(append(stringsOf(doc["assigned_user_names"]), t.to)))
		}
	}
	s.finishSave(rec, before, u.UserName)
	s.inj.Counters().Write(strings.ToLower(typ) + "_create")
	return t, changedKeys(before, rec.doc), nil
}

// respond moves a transition to status as u. changed is nil when the move
// is not allowed: Primero answers 200 and changes nothing.
func (s *Server) respond(t *transition, u *user, status, rejectedReason, rejectionNote string) []string {
	allowed := false
	switch {
	case status == statusAccepted && t.status == statusInProgress:
		allowed = true
	case status == statusRejected && t.status == statusInProgress:
		allowed = true
	case status == statusDone && t.status == statusAccepted && t.typ == typeReferral:
		allowed = true
	case status == statusRevoked && t.live():
		allowed = true
	}
	if !allowed {
		return nil
	}
	rec := t.record
	before := deepCopy(s.ownDoc(rec)).(map[string]any)
	doc := rec.doc
	now := s.now().UnixMilli()
	t.status = status
	switch status {
	case statusAccepted:
		t.responded = now
		if t.typ == typeTransfer {
			doc["previously_owned_by"] = doc["owned_by"]
			doc["owned_by"] = t.to
			s.dropAssigned(rec, t)
		}
	case statusRejected:
		t.responded = now
		t.rejectedReason = rejectedReason
		s.dropAssigned(rec, t)
	case statusDone:
		t.rejectionNote = rejectionNote
		if t.serviceRecordID != nil {
			for _, row := range anySlice(doc["services_section"]) {
				m, ok := row.(map[string]any)
				if !ok || strOf(m["unique_id"]) != *t.serviceRecordID {
					continue
				}
				if !present(m["service_implemented_day_time"]) {
					m["service_implemented_day_time"] = fmtMS(now)
				}
				m["service_implemented"] = "implemented"
				if rejectionNote != "" {
					m["note_on_referral_from_provider"] = rejectionNote
				}
			}
		}
	case statusRevoked:
		s.dropAssigned(rec, t)
	}
	s.finishSave(rec, before, u.UserName)
	s.inj.Counters().Write(strings.ToLower(t.typ) + "_" + status)
	// Non-nil even when no field moved: the save itself happened.
	return append([]string{}, changedKeys(before, rec.doc)...)
}

// dropAssigned removes a recipient from assigned_user_names unless another
// live transition still needs them.
func (s *Server) dropAssigned(rec *record, t *transition) {
	for _, o := range rec.trans {
		if o != t && o.to == t.to && o.live() {
			return
		}
	}
	var kept []string
	for _, n := range stringsOf(rec.doc["assigned_user_names"]) {
		if n != t.to {
			kept = append(kept, n)
		}
	}
	rec.doc["assigned_user_names"] = toAnyStrings(kept)
}

func anySlice(v any) []any { a, _ := v.([]any); return a }

// transitionAnswer is the transition plus the "record" echo of the case.
func (s *Server) transitionAnswer(t *transition, u *user, changed []string) json.RawMessage {
	o := s.renderTransition(t, u)
	rec := t.record
	if rec.doc == nil {
		// An untouched seeded case answering an illegal move: echo it
		// without storing its document.
		e := newObject()
		e.add("id", rec.id)
		e.add("enabled", enabledOf(s.docOf(rec)))
		e.add("last_updated_at", fmtMS(rec.updated))
		o.add("record", e.bytes())
	} else {
		o.add("record", s.renderChanged(rec, u, changed))
	}
	return o.bytes()
}

func decodeData(r *http.Request, v any) error {
	var body struct {
		Data json.RawMessage `json:"data"`
	}
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
		return err
	}
	if len(body.Data) == 0 || string(body.Data) == "null" {
		return errMissingData
	}
	return json.Unmarshal(body.Data, v)
}

var errMissingData = errors.New("param is missing or the value is empty: data")

func (s *Server) handleCreateReferral(w http.ResponseWriter, r *http.Request, u *user) {
	s.handleCreateTransition(w, r, u, typeReferral, "referral")
}

func (s *Server) handleCreateTransfer(w http.ResponseWriter, r *http.Request, u *user) {
	s.handleCreateTransition(w, r, u, typeTransfer, "transfer")
}

func (s *Server) handleCreateTransition(w http.ResponseWriter, r *http.Request, u *user, typ, perm string) {
	var req referralRequest
	if err := decodeData(r, &req); err != nil {
		missingData(w, r)
		return
	}
	s.lock()
	rec := s.caseFor(w, r, u)
	if rec == nil {
		s.mu.Unlock()
		return
	}
	if !u.role.can(perm) {
		s.mu.Unlock()
		forbidden(w, r)
		return
	}
	t, changed, err := s.newTransition(rec, u, typ, req)
	if err != nil {
		s.mu.Unlock()
		writeTransitionError(w, r, err)
		return
	}
	body := s.transitionAnswer(t, u, changed)
	out := s.outbound(EventCaseUpdate, rec)
	s.mu.Unlock()
	s.deliver(out)
	writeRaw(w, http.StatusOK, wrapData(body))
}

func wrapData(b json.RawMessage) []byte {
	return append(append([]byte(`{"data":`), b...), '}')
}

func (s *Server) handleBulkReferrals(w http.ResponseWriter, r *http.Request, u *user) {
	var req struct {
		referralRequest
		IDs []string `json:"ids"`
	}
	if err := decodeData(r, &req); err != nil {
		missingData(w, r)
		return
	}
	if !u.role.can("referral") {
		forbidden(w, r)
		return
	}
	var items []json.RawMessage
	var errs []apiError
	var outs []outboundDelivery
	s.lock()
	for _, id := range req.IDs {
		res := "/api/v2/cases/" + id + "/referrals"
		rec := s.byID[id]
		if rec == nil {
			errs = append(errs, apiError{Status: 404, Resource: res, Message: "Not Found", Detail: fmt.Sprintf("Couldn't find Child with 'id'=%s", id)})
			continue
		}
		if !s.inScope(u, s.docOf(rec)) {
			errs = append(errs, apiError{Status: 403, Resource: res, Message: "Forbidden"})
			continue
		}
		t, _, err := s.newTransition(rec, u, typeReferral, req.referralRequest)
		if err != nil {
			var te *transitionError
			errors.As(err, &te)
			errs = append(errs, apiError{Status: 422, Resource: res, Message: []string{te.key}, Detail: te.detail})
			continue
		}
		items = append(items, s.renderTransition(t, u).bytes())
		outs = append(outs, s.outbound(EventCaseUpdate, rec)...)
	}
	s.mu.Unlock()
	s.deliver(outs)
	o := newObject()
	o.add("data", rawList(items))
	if len(errs) > 0 {
		o.add("errors", errs)
	}
	writeRaw(w, http.StatusOK, o.bytes())
}

func (s *Server) handleRespondTransition(typ string) func(http.ResponseWriter, *http.Request, *user) {
	return func(w http.ResponseWriter, r *http.Request, u *user) {
		var req struct {
			Status         string `json:"status"`
			RejectedReason string `json:"rejected_reason"`
			RejectionNote  string `json:"rejection_note"`
		}
		if err := decodeData(r, &req); err != nil {
			missingData(w, r)
			return
		}
		s.lock()
		t, ok := s.findTransition(w, r, u, typ)
		if !ok {
			s.mu.Unlock()
			return
		}
		changed := s.respond(t, u, req.Status, req.RejectedReason, req.RejectionNote)
		body := s.transitionAnswer(t, u, changed)
		var out []outboundDelivery
		if changed != nil {
			out = s.outbound(EventCaseUpdate, t.record)
		}
		s.mu.Unlock()
		s.deliver(out)
		writeRaw(w, http.StatusOK, wrapData(body))
	}
}

// findTransition looks a transition up by its id across every case (the
// case in the URL is not consulted) and checks u may act on it.
func (s *Server) findTransition(w http.ResponseWriter, r *http.Request, u *user, typ string) (*transition, bool) {
	rid := r.PathValue("rid")
	t := s.refByID[rid]
	if t == nil || t.typ != typ {
		notFound(w, r, fmt.Sprintf("Couldn't find %s with 'id'=%s", typ, rid))
		return nil, false
	}
	receive := "receive_referral"
	if typ == typeTransfer {
		receive = "receive_transfer"
	}
	if !u.role.can("read") || !s.inScope(u, s.docOf(t.record)) && t.to != u.UserName ||
		!u.role.can("write") && !u.role.can(receive) {
		forbidden(w, r)
		return nil, false
	}
	return t, true
}

func (s *Server) handleRevokeReferral(w http.ResponseWriter, r *http.Request, u *user) {
	s.lock()
	t, ok := s.findTransition(w, r, u, typeReferral)
	if !ok {
		s.mu.Unlock()
		return
	}
	changed := s.respond(t, u, statusRevoked, "", "")
	body := s.transitionAnswer(t, u, changed)
	var out []outboundDelivery
	if changed != nil {
		out = s.outbound(EventCaseUpdate, t.record)
	}
	s.mu.Unlock()
	s.deliver(out)
	writeRaw(w, http.StatusOK, wrapData(body))
}

func (s *Server) handleAssign(w http.ResponseWriter, r *http.Request, u *user) {
	var req struct {
		TransitionedTo string  `json:"transitioned_to"`
		Notes          *string `json:"notes"`
	}
	if err := decodeData(r, &req); err != nil {
		missingData(w, r)
		return
	}
	s.lock()
	rec := s.caseFor(w, r, u)
	if rec == nil {
		s.mu.Unlock()
		return
	}
	if !u.role.can("assign") {
		s.mu.Unlock()
		forbidden(w, r)
		return
	}
	to := s.userByName[req.TransitionedTo]
	if to == nil || to.Disabled {
		s.mu.Unlock()
		writeTransitionError(w, r, &transitionError{detail: "transitioned_to", key: "transition.errors.to_user_can_receive"})
		return
	}
	before := deepCopy(s.ownDoc(rec)).(map[string]any)
	t := &transition{
		id: s.newID(), typ: typeAssign, status: statusDone, record: rec, to: to.UserName, by: u.UserName,
		notes: req.Notes, created: s.now().UnixMilli(),
	}
	if to.agency != nil {
		t.toAgency = to.agency.UniqueID
	}
	rec.trans = append(rec.trans, t)
	s.refByID[t.id] = t
	rec.doc["previously_owned_by"] = rec.doc["owned_by"]
	rec.doc["owned_by"] = to.UserName
	s.finishSave(rec, before, u.UserName)
	s.inj.Counters().Write("assign")
	body := s.transitionAnswer(t, u, changedKeys(before, rec.doc))
	out := s.outbound(EventCaseUpdate, rec)
	s.mu.Unlock()
	s.deliver(out)
	writeRaw(w, http.StatusOK, wrapData(body))
}

// RespondReferral accepts ("accepted"), rejects ("rejected"), completes
// ("done") or revokes ("revoked") a referral as userName would through
// PATCH …/referrals/:id. It reports whether anything changed: an illegal
// move changes nothing, as in Primero.
func (s *Server) RespondReferral(referralID, userName, status, note string) (bool, error) {
	s.lock()
	t := s.refByID[referralID]
	u := s.userByName[userName]
	if t == nil || u == nil {
		s.mu.Unlock()
		return false, fmt.Errorf("respond to referral %s as %s: unknown referral or user", referralID, userName)
	}
	changed := s.respond(t, u, status, note, note)
	var out []outboundDelivery
	if changed != nil {
		out = s.outbound(EventCaseUpdate, t.record)
	}
	s.mu.Unlock()
	s.deliver(out)
	return changed != nil, nil
}
