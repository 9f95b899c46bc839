package ping

import (
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

type ingestRequest struct {
	ShippingProcessID *string       `json:"ShippingProcessId"`
	PartnerID         *string       `json:"PartnerId"`
	InteropID         *string       `json:"InteropID"` // also matches InteropId
	APIVersion        *string       `json:"APIVersion"`
	Data              *[]ingestItem `json:"Data"`
}

type ingestItem struct {
	ExternalID   *string      `json:"ExternalId"`
	ExternalGUID *string      `json:"ExternalGUID"`
	Attachments  []attachment `json:"Attachments"`
	Fields       *[]field     `json:"Fields"`
}

type attachment struct {
	Comment *string `json:"Comment"`
}

type field struct {
	Name  *string `json:"Name"`
	Value *string `json:"Value"` // strings or null (ping.md §7)
}

// fieldMap is an item's fields by name; a nil value is a JSON null.
type fieldMap map[string]*string

func (f fieldMap) str(name string) string { return deref(f[name]) }

// itemResult is one entry of a sync ingestion answer [contract].
type itemResult struct {
	ExternalID *string `json:"ExternalId"`
	Status     string  `json:"Status"`
	Message    *string `json:"Message"`
}

func succeeded() itemResult { return itemResult{Status: StateSucceeded} }

func failed(format string, args ...any) itemResult {
	return itemResult{Status: StateFailed, Message: ptr(fmt.Sprintf(format, args...))}
}

// parseIngest checks what both ingestion endpoints share and returns the
// items with their fields by name. Anything PING could not even route is a
// 400 for the whole body (ping.md §7 contract).
func (s *Server) parseIngest(partner string, body []byte, want shpKind) (ingestRequest, shipping, []fieldMap, string) {
	var req ingestRequest
	if msg := decodeBody(body, &req); msg != "" {
		return req, shipping{}, nil, msg
	}
	if msg := s.checkDeployment(req.PartnerID, false, req.InteropID, partner); msg != "" {
		return req, shipping{}, nil, msg
	}
	sp, msg := lookupSHP(req.ShippingProcessID, want)
	if msg != "" {
		return req, sp, nil, msg
	}
	if v := req.APIVersion; v != nil && !strings.EqualFold(*v, "V2") {
		return req, sp, nil, fmt.Sprintf("APIVersion '%s' is not supported by this endpoint; use V2", *v)
	}
	if req.Data == nil || len(*req.Data) == 0 {
		return req, sp, nil, "Data is required and must hold at least one item"
	}
	fms := make([]fieldMap, len(*req.Data))
	for i, it := range *req.Data {
		if it.Fields == nil {
			return req, sp, nil, fmt.Sprintf("Data[%d].Fields is required", i)
		}
		fm := fieldMap{}
		for j, f := range *it.Fields {
			name := deref(f.Name)
			if name == "" {
				return req, sp, nil, fmt.Sprintf("Data[%d].Fields[%d].Name is required", i, j)
			}
			if _, dup := fm[name]; dup {
				return req, sp, nil, fmt.Sprintf("Data[%d].Fields has '%s' twice", i, name)
			}
			fm[name] = f.Value
		}
		for _, k := range sp.keyFields {
			if strings.TrimSpace(fm.str(k)) == "" {
				return req, sp, nil, fmt.Sprintf("Data[%d] has no value for the key field '%s'", i, k)
			}
		}
		fms[i] = fm
	}
	return req, sp, fms, ""
}

// unknownField names the first field outside the process's mapping.
func unknownField(f fieldMap, allowed map[string]bool) string {
	for _, k := range slices.Sorted(maps.Keys(f)) {
		if !allowed[k] {
			return k
		}
	}
	return ""
}

func validDate(v string) bool {
	_, err := time.Parse(time.DateOnly, v)
	return err == nil
}

// ingestSync serves POST /api/ingestion/v2/{PartnerId}/data: every item is
// applied or fails on its own, and the answer is 200 either way.
func (s *Server) ingestSync(partner string, body []byte) answer {
	req, sp, items, msg := s.parseIngest(partner, body, kindSync)
	if msg != "" {
		a := s.badRequest(msg)
		a.shp = deref(req.ShippingProcessID)
		return a
	}
	shp := *req.ShippingProcessID
	results := make([]itemResult, len(items))
	s.mu.Lock()
	for i, f := range items {
		it := (*req.Data)[i]
		if k := unknownField(f, sp.fields); k != "" {
			results[i] = failed("Field '%s' is not mapped for shipping process '%s'", k, shp)
		} else {
			results[i] = sp.apply(s, it, f)
		}
		results[i].ExternalID = it.ExternalID
		if results[i].Status == StateSucceeded {
			s.recordIngested(shp, it, f, nil)
		}
	}
	s.mu.Unlock()
	return answer{status: http.StatusOK, shp: shp, body: envelope{
		Data:             results,
		RecordCount:      ptr(len(results)),
		SPHTransactionID: ptr(s.newID()),
	}}
}

// recordIngested keeps a copy of an applied item for Ingested. Called with s.mu held.
func (s *Server) recordIngested(shp string, it ingestItem, f fieldMap, extra map[string]any) {
	fields := map[string]any{}
	for k, v := range f {
		if v == nil {
			fields[k] = nil
		} else {
			fields[k] = *v
		}
	}
	var notes []any
	for _, a := range it.Attachments {
		notes = append(notes, deref(a.Comment))
	}
	rec := map[string]any{"ExternalId": derefAny(it.ExternalID), "Fields": fields, "Attachments": notes}
	if it.ExternalGUID != nil {
		rec["ExternalGUID"] = *it.ExternalGUID
	}
	maps.Copy(rec, extra)
	s.ingested[shp] = append(s.ingested[shp], rec)
}

func derefAny(p *string) any {
	if p == nil {
		return nil
	}
	return *p
}

// comments returns the non-empty attachment comments of an item.
func comments(it ingestItem) []string {
	var out []string
	for _, a := range it.Attachments {
		if c := strings.TrimSpace(deref(a.Comment)); c != "" {
			out = append(out, c)
		}
	}
	return out
}

// addNotes appends attachment notes, counting one already present as a
// duplicate: attachments are records of their own, so a client that
// re-sends a decision every run piles the same comment up in proGres
// (ping.md §11 defect 4, inferred), which is what Duplicates lets a test see.
func (s *Server) addNotes(dst *[]string, notes []string) bool {
	for _, n := range notes {
		if slices.Contains(*dst, n) {
			s.Counters().Duplicates.Add(1)
		}
		*dst = append(*dst, n)
	}
	return len(notes) > 0
}

// applyTransferStatus writes SHP-2748 onto an intervention. Called with s.mu held.
func applyTransferStatus(s *Server, it ingestItem, f fieldMap) itemResult {
	id, ok := normGUID(f.str("progres_lpinterventionid"))
	if !ok {
		return failed("progres_lpinterventionid '%s' is not a GUID", f.str("progres_lpinterventionid"))
	}
	in := s.byIntervID[id]
	if in == nil {
		return failed("No progres_lpintervention record with id '%s'", id)
	}
	if bu, _ := normGUID(f.str("progres_businessunit")); bu != in.BusinessUnit {
		return failed("progres_businessunit '%s' does not own progres_lpintervention '%s'", f.str("progres_businessunit"), id)
	}
	status := in.TransferStatus
	if v, ok := f["progres_primerotransferstatus"]; ok {
		status = 0
		if v != nil && *v != "" {
			n, err := strconv.Atoi(*v)
			if err != nil || n < TransferDeliveryFail || n > TransferRejected {
				return failed("'%s' is not a valid option set value for progres_primerotransferstatus", *v)
			}
			status = n
		}
	}
	date := in.TransferStatusDate
	if v, ok := f["progres_primerotransferstatusdate"]; ok {
		date = deref(v)
		if date != "" && !validDate(date) {
			return failed("'%s' is not a valid date (YYYY-MM-DD) for progres_primerotransferstatusdate", date)
		}
	}
	primeroID, worker := in.PrimeroID, in.CaseWorker
	if v, ok := f["progres_primeroid"]; ok {
		primeroID = deref(v)
	}
	if v, ok := f["progres_primerocaseworker"]; ok {
		worker = deref(v)
	}
	comment := in.CommentField
	if v, ok := f["progres_comments_displayfield"]; ok {
		comment = deref(v)
	}
	changed := status != in.TransferStatus || date != in.TransferStatusDate ||
		primeroID != in.PrimeroID || worker != in.CaseWorker || comment != in.CommentField
	in.TransferStatus, in.TransferStatusDate, in.PrimeroID, in.CaseWorker = status, date, primeroID, worker
	in.CommentField = comment
	if s.addNotes(&in.Notes, comments(it)) {
		changed = true
	}
	s.countWrite(SHPTransferStatus, changed)
	return succeeded()
}

// applyMarkSynced writes SHP-2284 onto an interoperability referral.
// Called with s.mu held.
func applyMarkSynced(s *Server, it ingestItem, f fieldMap) itemResult {
	id, ok := normGUID(f.str("progres_interoperabilityreferralid"))
	if !ok {
		return failed("progres_interoperabilityreferralid '%s' is not a GUID", f.str("progres_interoperabilityreferralid"))
	}
	r := s.byReferralID[id]
	if r == nil {
		return failed("No progres_interoperabilityreferral record with id '%s'", id)
	}
	status := r.Status
	if v, ok := f["progres_interoperabilityreferralstatus"]; ok {
		n, err := strconv.Atoi(deref(v))
		if err != nil || n < ReferralNew || n > ReferralSynced {
			return failed("'%s' is not a valid option set value for progres_interoperabilityreferralstatus", deref(v))
		}
		status = n
	}
	comment := r.CommentField
	if v, ok := f["progres_comments"]; ok {
		comment = deref(v)
	}
	changed := status != r.Status || comment != r.CommentField
	r.Status, r.CommentField = status, comment
	if s.addNotes(&r.Notes, comments(it)) {
		changed = true
	}
	s.countWrite(SHPMarkSynced, changed)
	return succeeded()
}

func (s *Server) countWrite(shp string, changed bool) {
	if changed {
		s.Counters().Write(shp + " update")
	} else {
		s.Counters().Write(shp + " noop")
	}
}
