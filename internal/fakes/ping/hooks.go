package ping

import (
	"fmt"
	"maps"
	"slices"
	"time"
)

// Test hooks (ping.md §12): read and change proGres's side of the store
// the way a proGres user would, without going through PING.

// Ingested returns the items applied through ingestion for one shipping
// process, oldest first: sync items that Succeeded, and async items once
// their transaction finished and they Succeeded. Each is a fresh map with
// "ExternalId", "Fields" (name → string or nil), "Attachments" (comments),
// "ExternalGUID" when sent, and for created records "RecordId".
func (s *Server) Ingested(shp string) []map[string]any {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tickAll()
	out := make([]map[string]any, 0, len(s.ingested[shp]))
	for _, rec := range s.ingested[shp] {
		c := maps.Clone(rec)
		c["Fields"] = maps.Clone(rec["Fields"].(map[string]any))
		if a, ok := rec["Attachments"].([]any); ok {
			c["Attachments"] = slices.Clone(a)
		}
		out = append(out, c)
	}
	return out
}

// Pending returns the SHP-2747 queue as it stands, as SHP-2747 rows.
func (s *Server) Pending() []map[string]any {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []map[string]any
	for _, in := range s.interventions {
		if s.opts.IsPending(in.TransferStatus) {
			out = append(out, s.pendingRow(in))
		}
	}
	return out
}

// Decisions returns every interoperability referral as an SHP-2796 row
// (the SHP-2795 list is a projection of it), seeded and created alike, so
// a test or a demo can line the Primero side up with it.
func (s *Server) Decisions() []map[string]any {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tickAll()
	out := make([]map[string]any, 0, len(s.referrals))
	for _, r := range s.referrals {
		out = append(out, decisionDetailRow(r))
	}
	return out
}

// NewIntervention describes an intervention for AddIntervention. Zero fields
// are drawn from the seeded generator.
type NewIntervention struct {
	GivenName, FamilyName string
	DateOfBirth           string // YYYY-MM-DD
	NoDateOfBirth         bool   // leave the date of birth empty
	Sex                   int    // an option-set code, e.g. 125080000
	InterventionType      string // description, e.g. "BID"; need not be allow-listed
	Languages             []string
}

// AddIntervention adds an intervention pending transfer, as a proGres
// caseworker creating a referral would, and returns its
// progres_lpinterventionid. It joins the end of the SHP-2747 queue.
func (s *Server) AddIntervention(n NewIntervention) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	in := s.gen.intervention(len(s.interventions) + 100)
	in.Number = fmt.Sprintf("900-26-PRTITV-2%06d", len(s.interventions)+1)
	in.Person.ProgresID = fmt.Sprintf("900-2%08d", len(s.interventions)+1)
	in.TransferStatus, in.TransferStatusDate = 0, ""
	p := &in.Person
	if n.GivenName != "" {
		p.Given = n.GivenName
	}
	if n.FamilyName != "" {
		p.Family = n.FamilyName
	}
	if n.DateOfBirth != "" {
		p.DateOfBirth = n.DateOfBirth
	}
	if n.NoDateOfBirth {
		p.DateOfBirth = ""
	}
	if n.Sex != 0 {
		p.Sex = n.Sex
	}
	if n.InterventionType != "" {
		in.Type = interventionType{n.InterventionType, stableGUID("interventiontype", n.InterventionType)}
		for _, t := range append(slices.Clone(allowListedTypes), offListType) {
			if t.Description == n.InterventionType {
				in.Type = t
			}
		}
	}
	if n.Languages != nil {
		in.Languages = nil
		for _, l := range n.Languages {
			in.Languages = append(in.Languages, language{stableGUID("language", l), l})
		}
	}
	in.StartDate = s.opts.Now().UTC().Format(time.DateOnly)
	in.StatusDate = in.StartDate
	s.addIntervention(in)
	return in.ID
}

// Decide records a proGres decision on an interoperability referral:
// ReferralAccepted, or ReferralRejected with a reason name and comment, or
// any other status code (ReferralUnknownCode, ReferralNew) to test how a
// connector treats it.
func (s *Server) Decide(referralID string, status int, reasonName, comment string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tickAll()
	id, _ := normGUID(referralID)
	r := s.byReferralID[id]
	if r == nil {
		return fmt.Errorf("decide referral %s: %w", referralID, ErrNotFound)
	}
	decide(r, status, reasonName, comment)
	return nil
}

// decideNew is AutoDecide: a proGres officer deciding every new referral,
// accepting two and rejecting the third. Called with s.mu held.
func (s *Server) decideNew() {
	for _, r := range s.referrals {
		if r.Status != ReferralNew {
			continue
		}
		s.autoDecided++
		if s.autoDecided%3 == 0 {
			decide(r, ReferralRejected, rejectionReasons[0], rejectionComments[0])
		} else {
			decide(r, ReferralAccepted, "", "")
		}
	}
}

// Intervention returns the stored state of one intervention: its SHP-2358
// attributes of the first detail row, plus "progres_primerocaseworker",
// "progres_comments_displayfield" and "notes" (attachment comments), which
// PING never reads back.
func (s *Server) Intervention(id string) (map[string]any, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	nid, _ := normGUID(id)
	in := s.byIntervID[nid]
	if in == nil {
		return nil, false
	}
	r := s.detailRows(in)[0]
	r["progres_lpinterventionid"] = in.ID
	r.setStr("progres_primerocaseworker", in.CaseWorker)
	r.setStr("progres_comments_displayfield", in.CommentField)
	r["notes"] = slices.Clone(in.Notes)
	return r, true
}

// Referral returns the stored state of one interoperability referral: its
// SHP-2796 row plus every field SHP-2731 stored, "progres_comments" and
// "notes" (attachment comments).
func (s *Server) Referral(id string) (map[string]any, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tickAll()
	nid, _ := normGUID(id)
	r := s.byReferralID[nid]
	if r == nil {
		return nil, false
	}
	out := decisionDetailRow(r)
	for k, v := range r.Fields {
		if _, ok := out[k]; !ok {
			out[k] = derefAny(v)
		}
	}
	out.setStr("progres_comments", r.CommentField)
	out["notes"] = slices.Clone(r.Notes)
	return out, true
}
