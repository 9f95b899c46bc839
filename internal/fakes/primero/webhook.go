package primero

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Webhook events (primero.md §8).
const (
	EventCaseCreate = "case.create"
	EventCaseUpdate = "case.update"
	EventCasePost   = "case.post" // the Sync button
)

// Webhook auth types.
const (
	WebhookAPIKey    = "api_key"
	WebhookBasicAuth = "basic_auth"
)

// Webhook is a webhook seeded into the fake. Auth type and secret are
// seed-only, as in Primero.
type Webhook struct {
	URL      string
	Events   []string // e.g. EventCaseCreate, EventCaseUpdate, EventCasePost
	AuthType string   // "", WebhookAPIKey or WebhookBasicAuth
	Secret   string   // the x-api-key value, or "user:password" for basic auth
	Role     string   // role whose readable fields go in the body; default "role-integration"
	Metadata map[string]any
}

type webhookDef struct {
	Webhook
	id int
}

// Delivery is one attempted webhook POST.
type Delivery struct {
	URL        string
	Event      string
	RecordID   string
	Status     string // "sent" (answer < 400) or "failed"
	HTTPStatus int    // 0 when the connection failed
	Body       []byte
	At         time.Time
}

type outboundDelivery struct {
	hook     *webhookDef
	event    string
	recordID string
	body     []byte
}

// outbound builds the deliveries a save of rec queues for event: only for
// modules that use webhooks for cases, and only for webhooks subscribed to
// the event. Callers hold s.mu.
func (s *Server) outbound(event string, rec *record) []outboundDelivery {
	if len(s.webhooks) == 0 {
		return nil
	}
	d := s.docOf(rec)
	mod := s.cat.moduleByID[strOf(d["module_id"])]
	if mod == nil || !slices.Contains(mod.UseWebhooksFor, "case") {
		return nil
	}
	var out []outboundDelivery
	for _, h := range s.webhooks {
		if !slices.Contains(h.Events, event) {
			continue
		}
		roleID := h.Role
		if roleID == "" {
			roleID = "role-integration"
		}
		rl := s.cat.roles[roleID]
		if rl == nil {
			continue
		}
		reader := &user{User: User{UserName: "webhook"}, role: rl}
		o := newObject()
		o.add("record_id", rec.id)
		o.add("record_type", "case")
		o.add("hostname", s.opts.Hostname)
		keys := make([]string, 0, len(d))
		for k := range d {
			if k != "id" && k != "enabled" && k != "last_updated_at" && s.visible(reader, k) {
				keys = append(keys, k)
			}
		}
		sort.Strings(keys)
		for _, k := range keys {
			o.add(k, d[k])
		}
		o.add("last_updated_at", fmtMS(rec.updated))
		o.add("record_in_scope", false)
		o.add("alert_count", 0)
		out = append(out, outboundDelivery{hook: h, event: event, recordID: rec.id, body: wrapData(o.bytes())})
	}
	return out
}

// deliver posts each delivery in the background: one attempt, no retry,
// as Primero's WebhookJob. Close waits for them.
func (s *Server) deliver(out []outboundDelivery) {
	for _, d := range out {
		s.sending.add()
		go func() {
			defer s.sending.done()
			s.post(d)
		}()
	}
}

var webhookClient = &http.Client{Timeout: 30 * time.Second}

func (s *Server) post(d outboundDelivery) {
	ctx, cancel := context.WithTimeout(s.ctx, 30*time.Second)
	defer cancel()
	entry := Delivery{URL: d.hook.URL, Event: d.event, RecordID: d.recordID, Body: d.body, Status: "failed", At: s.now()}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.hook.URL, bytes.NewReader(d.body))
	if err == nil {
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("cache-control", "no-cache")
		switch d.hook.AuthType {
		case WebhookAPIKey:
			req.Header.Set("x-api-key", d.hook.Secret)
		case WebhookBasicAuth:
			user, pass, _ := strings.Cut(d.hook.Secret, ":")
			req.SetBasicAuth(user, pass)
		}
		var resp *http.Response
		if resp, err = webhookClient.Do(req); err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			entry.HTTPStatus = resp.StatusCode
			if resp.StatusCode < 400 {
				entry.Status = "sent"
			}
		}
	}
	s.lock()
	s.deliveries = append(s.deliveries, entry)
	// Only the Sync button's event drives the computed sync status: a
	// plain case.update echo must not overwrite a receiver's write-back.
	if d.event == EventCasePost {
		if rec := s.byID[d.recordID]; rec != nil && rec.syncStatus == "sending" {
			rec.syncStatus = entry.Status
		}
	}
	s.mu.Unlock()
}

// WaitDeliveries blocks until every webhook delivery queued so far has been
// attempted and logged. Tests call it instead of sleeping.
func (s *Server) WaitDeliveries() { s.sending.wait() }

// Deliveries returns the webhook delivery log, oldest first.
func (s *Server) Deliveries() []Delivery {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return append([]Delivery(nil), s.deliveries...)
}

func (s *Server) handleListWebhooks(w http.ResponseWriter, r *http.Request, u *user) {
	if !u.role.can("sync_external") {
		forbidden(w, r)
		return
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	var items []map[string]any
	for _, h := range s.webhooks {
		items = append(items, map[string]any{"id": h.id, "events": h.Events, "url": h.URL, "role_unique_id": h.Role,
			"auth_type": h.AuthType, "metadata": h.Metadata})
	}
	writeJSON(w, http.StatusOK, map[string]any{"data": items, "metadata": map[string]any{"total": len(items), "per": 20, "page": 1}})
}

func (s *Server) handleCreateWebhook(w http.ResponseWriter, r *http.Request, u *user) {
	if !u.role.can("sync_external") {
		forbidden(w, r)
		return
	}
	var req struct {
		Events   []string       `json:"events"`
		URL      string         `json:"url"`
		Role     string         `json:"role_unique_id"`
		Metadata map[string]any `json:"metadata"`
	}
	if err := decodeData(r, &req); err != nil {
		missingData(w, r)
		return
	}
	s.lock()
	defer s.mu.Unlock()
	for _, h := range s.webhooks {
		if h.URL == req.URL {
			writeErrors(w, r, http.StatusUnprocessableEntity, []string{"errors.models.webhook.url.taken"}, "url")
			return
		}
	}
	h := &webhookDef{Webhook: Webhook{URL: req.URL, Events: req.Events, Role: req.Role, Metadata: req.Metadata}, id: len(s.webhooks) + 1}
	s.webhooks = append(s.webhooks, h)
	writeJSON(w, http.StatusOK, map[string]any{"data": map[string]any{"id": h.id, "events": h.Events, "url": h.URL, "role_unique_id": h.Role, "metadata": h.Metadata}})
}

func (s *Server) handleDeleteWebhook(w http.ResponseWriter, r *http.Request, u *user) {
	if !u.role.can("sync_external") {
		forbidden(w, r)
		return
	}
	id, _ := strconv.Atoi(r.PathValue("id"))
	s.lock()
	defer s.mu.Unlock()
	for i, h := range s.webhooks {
		if h.id == id {
			s.webhooks = append(s.webhooks[:i], s.webhooks[i+1:]...)
			writeJSON(w, http.StatusOK, map[string]any{"data": map[string]any{"id": id}})
			return
		}
	}
	notFound(w, r, "Couldn't find Webhook with 'id'="+r.PathValue("id"))
}

// AddWebhook seeds a webhook (auth type and secret included, as Primero's
// seeds do) on a running fake: a test or the demo learns the receiver's
// address only once it listens.
func (s *Server) AddWebhook(w Webhook) {
	s.lock()
	defer s.mu.Unlock()
	s.webhooks = append(s.webhooks, &webhookDef{Webhook: w, id: len(s.webhooks) + 1})
}
