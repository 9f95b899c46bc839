package oscar

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
)

// PUT clients/update_links and PUT referrals/update_statuses.

func decodeData(r *http.Request) (any, bool) {
	dec := json.NewDecoder(r.Body)
	dec.UseNumber()
	var body map[string]any
	if dec.Decode(&body) != nil {
		return nil, false
	}
	return body["data"], true
}

// updateLinks writes Primero ids onto clients OSCaR already has. Unknown
// global_ids are skipped without a word; every tenant linked to a known
// one gets the ids.
func (s *Server) updateLinks(w http.ResponseWriter, r *http.Request) {
	data, ok := decodeData(r)
	if !ok {
		writeHTML(w, http.StatusBadRequest, page400)
		return
	}
	items, isList := data.([]any)
	if !present(data) || !isList {
		// The error branch renders client.errors with no client in scope:
		// NameError, so a 500 page rather than the intended 422.
		fail500(w)
		return
	}
	type ids struct{ ext, disp *string }
	byGID := map[string]ids{} // to_h: the last item for a global_id wins
	var order []string
	for _, it := range items {
		m, ok := it.(map[string]any)
		if !ok {
			fail500(w)
			return
		}
		p := params(m)
		gid := p.str("global_id")
		if _, seen := byGID[gid]; !seen {
			order = append(order, gid)
		}
		byGID[gid] = ids{p.ptr("external_id"), p.ptr("external_id_display")}
	}
	s.mu.Lock()
	now := s.Now()
	for _, gid := range order {
		id := s.identities[gid]
		if id == nil {
			continue
		}
		v := byGID[gid]
		for _, l := range id.links {
			c := l.client
			changed := !eqPtr(c.externalID, v.ext) || !eqPtr(c.externalIDDisplay, v.disp)
			c.externalID, c.externalIDDisplay = v.ext, v.disp
			c.syncedDate = now.Format("2006-01-02")
			if changed {
				c.updatedAt = now
			}
		}
		// One write per item, however many tenants share the identity: the
		// counter counts what the client asked for, comparable to its own count.
		if len(id.links) > 0 {
			s.Counters().Write("client.link")
		}
	}
	s.mu.Unlock()
	s.reply(w, http.StatusOK, map[string]any{"message": msgRecordSaved})
}

// updateStatuses applies Primero's decisions on referrals that came from
// OSCaR, item by item with no transaction: the first bad item answers 422
// and the items before it stay applied.
func (s *Server) updateStatuses(w http.ResponseWriter, r *http.Request) {
	data, ok := decodeData(r)
	if !ok {
		writeHTML(w, http.StatusBadRequest, page400)
		return
	}
	items, isList := data.([]any)
	if !isList {
		fail500(w) // nil.each: NoMethodError, which the rescue does not catch
		return
	}
	s.mu.Lock()
	reason, crashed := s.applyStatuses(items)
	s.mu.Unlock()
	switch {
	case crashed:
		fail500(w)
	case reason != "":
		s.reply(w, http.StatusUnprocessableEntity, map[string]any{"error": reason, "message": msgRecordError})
	default:
		s.reply(w, http.StatusOK, map[string]any{"message": msgRecordSaved})
	}
}

func (s *Server) applyStatuses(items []any) (reason string, crashed bool) {
	for _, it := range items {
		m, ok := it.(map[string]any)
		if !ok {
			return "", true
		}
		p := params(m)
		id := s.identities[p.str("client_global_id")]
		if id == nil || len(id.links) == 0 {
			return "ActiveRecord::RecordNotFound", false
		}
		t := id.links[0].tenant
		raw, has := p.scalar("referral_id")
		if !has {
			return "Couldn't find Referral without an ID", false
		}
		n, err := referralID(raw)
		var ref *referral
		if err == nil {
			ref = t.referralByID(n)
		}
		if ref == nil {
			return fmt.Sprintf("Couldn't find Referral with 'id'=%s", raw), false
		}
		// update_attributes runs every validation; the store only holds
		// valid referrals, so only the status can fail. The model accepts
		// any client status, "Active" included.
		trial := *ref
		trial.status = p.str("referral_status")
		if errs := validateReferral(&trial); len(errs) > 0 {
			msgs := fullMessages(errs)
			msgs = append(msgs, msgBadStatus)
			return strings.Join(msgs, ". "), false
		}
		ref.status = trial.status
		ref.updateAt = s.Now()
		s.Counters().Write("referral.status")
	}
	return "", false
}

// referralID reads an id the way Referral.find casts it: 1193, "1193" or
// 1193.0.
func referralID(raw string) (int, error) {
	if n, err := strconv.Atoi(strings.TrimSpace(raw)); err == nil {
		return n, nil
	}
	f, err := strconv.ParseFloat(raw, 64)
	if err != nil || f != float64(int(f)) {
		return 0, fmt.Errorf("not an id")
	}
	return int(f), nil
}

// fullMessages is errors.full_messages: "Referral status can't be blank".
func fullMessages(e fieldErrors) []string {
	var out []string
	for _, f := range e {
		name := strings.ReplaceAll(f.Field, "_", " ")
		name = strings.ToUpper(name[:1]) + name[1:]
		for _, m := range f.Msgs {
			out = append(out, name+" "+m)
		}
	}
	return out
}
