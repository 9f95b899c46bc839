package daemon

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"casesync/engine"
	"casesync/engine/mapping"
	"casesync/internal/redact"
)

const triggerInbox = "inbox"

var errNotJSON = errors.New("body is not JSON")

// serveInbox accepts one webhook delivery: authenticate, bound the body,
// work out the record key, and persist it before answering 202. A delivery
// seen before (same body) is answered 200 and not processed again. The
// processing itself happens in the pipeline's inbox worker.
func (d *Daemon) serveInbox(w http.ResponseWriter, r *http.Request, in *inbox) {
	start := time.Now()
	p := in.pipeline
	result := "error"
	defer func() { d.m.inbox.Inc(p.Name, result) }()
	if r.Method != http.MethodPost {
		result = "bad_method"
		w.Header().Set("Allow", http.MethodPost)
		writeJSON(w, http.StatusMethodNotAllowed, map[string]string{"error": "POST a delivery here"})
		return
	}
	addr, now := clientAddr(r), time.Now()
	if blocked, first := d.throttle.blocked(addr, now); blocked {
		result = "throttled"
		if first {
			d.log.Warn("inbox: throttling a client after repeated failed authentication", "pipeline", p.Name, "remote", addr)
		}
		w.Header().Set("Retry-After", strconv.Itoa(int(authFailEvery.Seconds())))
		writeJSON(w, http.StatusTooManyRequests, map[string]string{"error": "too many failed authentications; try again later"})
		return
	}
	refuse := func(why string) {
		result = "unauthorized"
		d.throttle.failed(addr, now)
		// What was presented is never logged: it may be a near-miss of
		// the secret.
		d.log.Warn("inbox: authentication failed", "pipeline", p.Name, "remote", addr, "reason", why)
		if in.hasSecret {
			w.Header().Set("WWW-Authenticate", `Basic realm="casesync inbox"`)
		}
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "delivery not authenticated"})
	}
	if why := in.checkSecret(r); why != "" {
		refuse(why)
		return
	}
	if !jsonContent(r.Header.Get("Content-Type")) {
		result = "bad_content_type"
		writeJSON(w, http.StatusUnsupportedMediaType, map[string]string{"error": "send the delivery as JSON (Content-Type: application/json)"})
		return
	}
	limit := p.Inbox.MaxBytes
	if r.ContentLength > limit {
		result = "too_large"
		writeJSON(w, http.StatusRequestEntityTooLarge, map[string]any{"error": "body too large", "max_bytes": limit})
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			result = "too_large"
			writeJSON(w, http.StatusRequestEntityTooLarge, map[string]any{"error": "body too large", "max_bytes": limit})
			return
		}
		result = "bad_request"
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "read body: " + err.Error()})
		return
	}
	if why := in.checkSignature(r, body, d.cfg.Clock.Now()); why != "" {
		refuse(why)
		return
	}
	item, err := d.inboxItem(r.Context(), p, body, deliveryMeta(r, p.Inbox))
	if err != nil {
		code := http.StatusUnprocessableEntity
		result = "unprocessable"
		if errors.Is(err, errNotJSON) {
			code, result = http.StatusBadRequest, "bad_request"
		}
		writeJSON(w, code, map[string]string{"error": err.Error()})
		return
	}
	item.Received = d.cfg.Clock.Now()
	dup, err := d.cfg.State.InboxPut(r.Context(), item)
	if err != nil {
		// Not stored: the sender must try again.
		d.log.Error("inbox: store delivery", "pipeline", p.Name, "error", err)
		w.Header().Set("Retry-After", "5")
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": "delivery not stored; try again"})
		return
	}
	d.m.acceptDur.Observe(time.Since(start).Seconds(), p.Name)
	if dup {
		result = "duplicate"
		writeJSON(w, http.StatusOK, map[string]string{"status": "duplicate", "delivery": item.DeliveryID})
		return
	}
	result = "accepted"
	s := d.slot(p.Name)
	s.pending.Add(1)
	select {
	case s.inbox <- struct{}{}:
	default:
	}
	d.event(Event{Kind: EventInboxAccepted, Pipeline: p.Name, N: 1})
	writeJSON(w, http.StatusAccepted, map[string]string{"status": "accepted", "delivery": item.DeliveryID})
}

// inboxItem works out what to store for a delivery. The delivery id is the
// hash of the body, so a repeated delivery is recognised. With
// trigger.inbox.fetch the key program yields the record key and only the
// key is stored: the record is re-read when processed, and no case data
// rests in the state file. Without fetch the key program yields the record
// itself (a scalar means the whole body is the record), whose key comes
// from source.key, and the record is stored until processed.
func (d *Daemon) inboxItem(ctx context.Context, p *engine.Pipeline, body []byte, meta deliveryEnvelope) (engine.InboxItem, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return engine.InboxItem{}, errNotJSON
	}
	if _, err := dec.Token(); err != io.EOF {
		return engine.InboxItem{}, fmt.Errorf("%w: more than one JSON value", errNotJSON)
	}
	sum := sha256.Sum256(body)
	item := engine.InboxItem{Inbox: p.Name, DeliveryID: hex.EncodeToString(sum[:16]), Window: -1}
	if p.Inbox.DedupeSet {
		item.Window = p.Inbox.DedupeWindow
	}
	jctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	vars := &mapping.Vars{Vars: d.cur.Load().plan.Vars, Now: d.cfg.Clock.Now().Format(time.RFC3339)}
	dl := engine.Delivery{Body: v, Headers: meta.Headers, Query: meta.Query}
	if p.Inbox.DedupeID != nil {
		idv, err := p.Inbox.DedupeID.One(jctx, dl.Envelope(), vars)
		if err != nil || scalar(idv) == "" {
			return item, fmt.Errorf("trigger.inbox.dedupe.id (%s) yields no delivery id", p.Inbox.Pos)
		}
		idSum := sha256.Sum256([]byte(scalar(idv)))
		item.DeliveryID = "id-" + hex.EncodeToString(idSum[:16])
	}
	rec, key, delivery, err := p.Inbox.Receive(jctx, p, dl, item.DeliveryID, vars)
	if err != nil {
		return item, err
	}
	item.RecordKey = key
	// When it came: filters compare it with the engine's own last write
	// of the record (delivery.own_write_age).
	delivery["received"] = d.cfg.Clock.Now().UTC().Format(time.RFC3339Nano)
	if item.Delivery, err = json.Marshal(delivery); err != nil {
		return item, err
	}
	if rec != nil {
		if item.Body, err = json.Marshal(rec); err != nil {
			return item, err
		}
	}
	return item, nil
}

// deliveryEnvelope is a delivery's query and headers as the inbox keeps
// them.
type deliveryEnvelope struct {
	Query   map[string]any
	Headers map[string]any
}

// credentialHeaders never reach the envelope: they authenticate, and a
// delivery's envelope waits in the state file until it is processed.
var credentialHeaders = map[string]bool{"authorization": true, "proxy-authorization": true, "cookie": true, "x-api-key": true}

// deliveryMeta is a request's query and headers (names lower case, the
// last value of each), minus every credential: the inbox's own secret and
// signature headers and any name that says credential.
func deliveryMeta(r *http.Request, in *engine.Inbox) deliveryEnvelope {
	skip := map[string]bool{strings.ToLower(in.Header): true}
	if in.HMAC != nil {
		skip[strings.ToLower(in.HMAC.SignatureHeader)] = true
		skip[strings.ToLower(in.HMAC.TimestampHeader)] = true
	}
	m := deliveryEnvelope{Query: map[string]any{}, Headers: map[string]any{}}
	for k, vs := range r.Header {
		lk := strings.ToLower(k)
		if len(vs) == 0 || skip[lk] || credentialHeaders[lk] || redact.IsSecretName(k) {
			continue
		}
		m.Headers[lk] = vs[len(vs)-1]
	}
	for k, vs := range r.URL.Query() {
		if len(vs) == 0 || redact.IsSecretName(k) {
			continue
		}
		m.Query[k] = vs[len(vs)-1]
	}
	return m
}

func scalar(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case json.Number:
		return x.String()
	case float64, int, int64, bool:
		return fmt.Sprint(x)
	}
	return ""
}

// startInboxWorkers starts a worker for each inbox pipeline of plan that
// has none, and with kick wakes every worker to look at its pending
// deliveries (at start, after a crash, after a reload).
func (d *Daemon) startInboxWorkers(plan *engine.Plan, kick bool) {
	d.mu.Lock()
	ctx := d.life
	d.mu.Unlock()
	if ctx == nil || d.draining.Load() {
		return
	}
	for _, name := range plan.Order {
		if plan.Pipelines[name].Inbox == nil {
			continue
		}
		s := d.slot(name)
		d.mu.Lock()
		start := !s.worker && !d.draining.Load()
		if start {
			s.worker = true
			d.loops.Add(1)
		}
		d.mu.Unlock()
		if start {
			go func() {
				defer d.loops.Done()
				d.inboxWorker(ctx, s)
			}()
		}
		if kick {
			select {
			case s.inbox <- struct{}{}:
			default:
			}
		}
	}
}

// inboxWorker processes a pipeline's pending deliveries in batches, each
// batch one run holding the pipeline's slot, until none are left or the
// daemon stops. A failed batch stays pending and is tried again after a
// growing pause.
func (d *Daemon) inboxWorker(ctx context.Context, s *slot) {
	pause := time.Second
	retryTick := time.NewTicker(pushedRetryEvery)
	defer retryTick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.inbox:
		case <-retryTick.C:
			d.pushedRetries(ctx, s)
			continue
		}
		for ctx.Err() == nil {
			if err := s.lock(ctx); err != nil {
				return
			}
			n, err := d.inboxBatch(s)
			s.unlock()
			if err != nil {
				d.log.Error("inbox batch failed; deliveries stay pending", "pipeline", s.name, "error", err, "retry_in", pause)
				t := time.NewTimer(pause)
				select {
				case <-ctx.Done():
					t.Stop()
					return
				case <-t.C:
				}
				pause = min(pause*2, 5*time.Minute)
				continue
			}
			pause = time.Second
			if n == 0 {
				break
			}
		}
	}
}

// inboxBatch processes up to InboxBatch pending deliveries as one run and
// marks them done. The run's page commit records the outcomes (a failed
// record goes to the retry queue like any other), so a delivery is marked
// done only after its outcome is durable; a crash in between processes it
// again, which the upsert's payload hash and the link ledger make a no-op.
func (d *Daemon) inboxBatch(s *slot) (int, error) {
	ctx := context.Background()
	items, err := d.cfg.State.InboxPending(ctx, s.name, d.cfg.InboxBatch)
	if err != nil || len(items) == 0 {
		return 0, err
	}
	p := d.cur.Load().plan.Pipelines[s.name]
	if p == nil || p.Inbox == nil {
		// The inbox was removed by a reload: keep the deliveries for a
		// plan that has it again.
		d.log.Warn("pending inbox deliveries for a pipeline without an inbox; kept", "pipeline", s.name, "pending", len(items))
		return 0, nil
	}
	// The newest delivery of a record wins; the others are done with it.
	var (
		keys       []string
		records    []any
		seen       = map[string]int{}
		bodies     = map[string][]byte{}
		deliveries = map[string]any{}
	)
	for _, it := range items {
		if len(it.Delivery) > 0 {
			var env map[string]any
			if err := json.Unmarshal(it.Delivery, &env); err == nil {
				deliveries[it.RecordKey] = env
			}
		}
		if len(it.Body) > 0 {
			bodies[it.RecordKey] = it.Body
			if _, ok := seen["b"+it.RecordKey]; !ok {
				seen["b"+it.RecordKey] = len(records)
				records = append(records, nil)
			}
			continue
		}
		if _, ok := seen["k"+it.RecordKey]; !ok {
			seen["k"+it.RecordKey] = len(keys)
			keys = append(keys, it.RecordKey)
		}
	}
	for key, body := range bodies {
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.UseNumber()
		var rec any
		if err := dec.Decode(&rec); err != nil {
			return 0, fmt.Errorf("stored delivery for %s is not JSON: %w", key, err)
		}
		records[seen["b"+key]] = rec
	}
	if len(keys) > 0 && p.Inbox.Fetch == nil && p.Source.Get == nil {
		return 0, fmt.Errorf("%d deliveries hold only a key, and the pipeline has neither trigger.inbox.fetch nor source.get to read the record", len(keys))
	}
	if len(records) > 0 {
		if _, err := d.execute(s, engine.SyncOptions{Trigger: triggerInbox, Records: records, Deliveries: deliveries, Pushed: true}, false); err != nil {
			d.inboxAttempted(items)
			return 0, err
		}
	}
	if len(keys) > 0 {
		if _, err := d.execute(s, engine.SyncOptions{Trigger: triggerInbox, Keys: keys, Deliveries: deliveries}, p.Inbox.Fetch != nil); err != nil {
			d.inboxAttempted(items)
			return 0, err
		}
	}
	now := d.cfg.Clock.Now()
	for _, it := range items {
		if err := d.cfg.State.InboxDone(ctx, it.ID, now); err != nil {
			return 0, err
		}
		s.pending.Add(-1)
	}
	d.m.inboxDone.Add(float64(len(items)), s.name)
	d.event(Event{Kind: EventInboxProcessed, Pipeline: s.name, N: len(items)})
	return len(items), nil
}

// pushedRetryEvery is how often an inbox-only pipeline looks for pushed
// records whose retry is due: nothing else runs it (no cron, no listing),
// and the retry backoff starts at a minute.
const pushedRetryEvery = 30 * time.Second

// pushedRetries runs the due retries of pushed records (kept with their
// body in the retry queue) of an inbox pipeline that has no listing; a
// pipeline with a listing retries them in its own runs.
func (d *Daemon) pushedRetries(ctx context.Context, s *slot) {
	p := d.cur.Load().plan.Pipelines[s.name]
	if p == nil || !p.Source.NoListing {
		return
	}
	due, err := d.cfg.State.DueRetries(ctx, s.name, d.cfg.Clock.Now(), 0)
	if err != nil || !slices.ContainsFunc(due, func(it engine.RetryItem) bool { return len(it.Body) > 0 }) {
		return
	}
	if err := s.lock(ctx); err != nil {
		return
	}
	defer s.unlock()
	if _, err := d.execute(s, engine.SyncOptions{Trigger: "retry"}, false); err != nil {
		d.log.Warn("retry of pushed records failed; they stay queued", "pipeline", s.name, "error", err)
	}
}

func (d *Daemon) inboxAttempted(items []engine.InboxItem) {
	for _, it := range items {
		if err := d.cfg.State.InboxAttempted(context.Background(), it.ID); err != nil {
			d.log.Warn("count inbox attempt", "error", err)
		}
	}
}

// countPending reads how many deliveries wait in each inbox of plan.
func (d *Daemon) countPending(ctx context.Context, plan *engine.Plan) error {
	for _, name := range plan.Order {
		if plan.Pipelines[name].Inbox == nil {
			continue
		}
		items, err := d.cfg.State.InboxPending(ctx, name, 0)
		if err != nil {
			return err
		}
		d.slot(name).pending.Store(int64(len(items)))
	}
	return nil
}
