package engine

import (
	"context"
	"fmt"
	"sync"

	"casesync/engine/mapping"
)

// writer is the write stage: for one payload it finds the target (the id
// ledger, then the target's find by key), decides between create, update
// and no write at all, records a create's intent, and sends the write.
type writer struct {
	ru  *run
	tgt Target
	// srcName and linkName are the two systems of the id ledger.
	srcName, linkName string
	intents           *intentLog
	// batch queues the page's writes when the target is a BatchTarget
	// (nil otherwise, and in a dry run).
	batch *pageBatch

	rowsMu  sync.Mutex
	rowsFor *Known
	rows    map[string][]string
}

func newWriter(ru *run, tgt Target) *writer {
	w := &writer{ru: ru, tgt: tgt, srcName: ru.p.Source.Connector, linkName: ru.p.Upsert.LinkSystem,
		intents: &intentLog{state: ru.r.state, clock: ru.r.clock}}
	if bt, ok := tgt.(BatchTarget); ok && ru.opts.DryRun == nil {
		w.batch = &pageBatch{bt: bt}
	}
	switch {
	case ru.p.Upsert.Native:
		// A row's id is its upsert key, read from the payload at every
		// write, and the records row keeps it (target_id) for a removal:
		// a ledger row would repeat the records row, at two more random
		// index inserts per row and a read per page. No link, then.
		w.linkName = ""
	case w.linkName == "":
		w.linkName = ru.p.Upsert.Connector
	}
	return w
}

// found is where the target of a payload stands before the write.
type found struct {
	bkey     string // the business key ($key)
	hash     string // the payload's hash
	last     RecordState
	haveLast bool
	targetID string
	target   any  // the target's record, when a find returned it
	matched  bool // a find matched one record
	intent   string
}

// item decides and performs the write for one payload; w is the target's
// answer when a write was sent.
func (wr *writer) item(ctx context.Context, key string, payload map[string]any, v *mapping.Vars, kn *Known) (Decision, Written) {
	ru := wr.ru
	d := Decision{Pipeline: ru.p.Name, RecordKey: key, Payload: payload}
	f, done := wr.locate(ctx, &d, payload, v, kn)
	if done {
		return d, Written{}
	}
	f.vars(v)
	if !wr.choose(&d, f) {
		return d, Written{}
	}
	d.TargetID = f.targetID
	d.Reason = "payload_changed"
	if d.Action == ActionCreated {
		d.Reason = "new"
	}
	if ru.opts.Baseline && ru.opts.DryRun == nil {
		// The previous integration delivered it: remember it as sent.
		d.Action, d.Reason, d.Request = ActionUnchanged, ReasonBaseline, nil
		return withHash(d, f.hash, nil), Written{}
	}
	if ru.opts.DryRun != nil {
		// Only a dry run shows the request; a sync renders it once, when
		// it sends it.
		var err error
		if d.Request, err = wr.tgt.Preview(ctx, d.Action == ActionUpdated, payload, v); err != nil {
			return ru.failDecision(key, "request", ClassData, err), Written{}
		}
		if f.targetID == "" && d.Action == ActionUpdated {
			d.Reason = "upsert_endpoint"
		}
		if f.target != nil && isSubset(payload, f.target) {
			d.Action, d.Reason, d.Request = ActionUnchanged, "target_has_values", nil
		}
		return d, Written{}
	}
	return wr.send(ctx, d, f, payload, v)
}

// locate finds the target of a payload: the state's last write, the id
// ledger, a create intent left by a crash, then the target's find. done is
// true when the decision is already made (d holds it).
func (wr *writer) locate(ctx context.Context, d *Decision, payload map[string]any, v *mapping.Vars, kn *Known) (f found, done bool) {
	ru, u, key := wr.ru, &wr.ru.p.Upsert, d.RecordKey
	bkeyV, err := u.Key.One(ctx, payload, v)
	if err != nil {
		*d = ru.failDecision(key, evalReason(err, "key_error"), ClassData, fmt.Errorf("upsert.key: %w", err))
		return f, true
	}
	f.bkey = ScalarString(bkeyV)
	if f.bkey == "" && u.KeyFallback != nil {
		if fv, err := u.KeyFallback.One(ctx, payload, v); err == nil {
			f.bkey = ScalarString(fv)
		}
	}
	f.hash = payloadHash(payload)
	f.last, f.haveLast = kn.Records[key]
	switch {
	case f.haveLast && u.Unchanged == "hash" && f.last.PayloadHash == f.hash:
		d.Action, d.TargetID, d.Reason = ActionUnchanged, f.last.TargetID, "same_payload"
		return f, true
	case f.haveLast && u.Mode == "create_only":
		// Written before (its id may be unknown: a create that returned
		// none): create_only never writes it again.
		d.Action, d.TargetID, d.Reason = ActionUnchanged, f.last.TargetID, "exists"
		return f, true
	}
	v.Key = f.bkey
	if f.haveLast && f.last.TargetID != "" {
		f.targetID = f.last.TargetID
	} else {
		f.targetID = kn.Links[key]
	}
	if f.targetID == "" && u.Find == nil && u.Idempotent && u.Create == nil && u.Update != nil {
		// Update-only by id: the key is the target's own id (a webhook
		// that names the record to update), and the target is never
		// searched: a search can match the wrong record, an address cannot.
		f.targetID = f.bkey
	}
	dry := ru.opts.DryRun != nil
	if f.targetID == "" && !dry {
		// A create recorded but never committed: a crash (or a timeout
		// after sending) hid whether it reached the target.
		f.intent = kn.Intents[key]
	}
	if u.Find != nil && (f.targetID == "" || dry) {
		if done := wr.find(ctx, d, &f, payload, v); done {
			return f, true
		}
	}
	return f, wr.recover(d, &f)
}

// find asks the target for the payload's key.
func (wr *writer) find(ctx context.Context, d *Decision, f *found, payload map[string]any, v *mapping.Vars) (done bool) {
	ru, key := wr.ru, d.RecordKey
	if f.bkey == "" {
		// An empty key would match everything: never search with it.
		*d = ru.failDecision(key, "empty_key", ClassData, fmt.Errorf("upsert key is empty; refusing to search the target with it"))
		return true
	}
	m, err := wr.tgt.Find(ctx, payload, v)
	if err != nil {
		*d = ru.failDecision(key, "find", ClassOf(err), err)
		return true
	}
	if m.Count > 1 {
		*d = ru.failDecision(key, "ambiguous_match", ClassPermanent, fmt.Errorf("%d target records match the key; not choosing one", m.Count))
		return true
	}
	if m.Count == 1 {
		f.targetID, f.target, f.matched = m.ID, m.Record, true
	}
	return false
}

// recover settles a create whose intent a crash left behind: confirmed
// when the target has this very payload, refused when the target cannot
// be searched and a second create could duplicate it.
func (wr *writer) recover(d *Decision, f *found) (done bool) {
	u := &wr.ru.p.Upsert
	switch {
	case f.intent != "" && f.intent == f.hash && f.matched:
		// The create of this very payload reached the target before the
		// crash: record it, do not send it again.
		d.Action, d.TargetID, d.Reason = ActionCreated, f.targetID, "write_confirmed"
		*d = withHash(*d, f.hash, nil)
		return true
	case f.intent != "" && f.targetID == "" && u.Find == nil && !u.Idempotent:
		fd := wr.ru.failDecision(d.RecordKey, "write_unconfirmed", ClassPermanent, fmt.Errorf(
			"a create of this record may have reached %s before the engine stopped; with no upsert.find to check and a create not declared idempotent, sending it again could duplicate it: check the target by hand", u.Connector))
		fd.Unconfirmed = true
		*d = fd
		return true
	}
	d.Before = f.target
	return false
}

// vars sets $target_id and $target for the write's templates.
func (f *found) vars(v *mapping.Vars) {
	v.TargetID, v.Target = nilIfEmpty(f.targetID), f.target
}

// choose sets the write a located payload needs; false when it needs none
// (d then says why).
func (wr *writer) choose(d *Decision, f found) bool {
	u := &wr.ru.p.Upsert
	switch {
	case f.targetID != "" && u.Mode == "create_only":
		d.Action, d.TargetID, d.Reason = ActionUnchanged, f.targetID, "exists"
		return false
	case f.targetID == "" && u.Mode == "update_only":
		d.Action, d.Reason = ActionSkipped, "target_not_found"
		return false
	case f.targetID != "" && u.Update != nil:
		d.Action = ActionUpdated
	case u.Create != nil || u.Native:
		d.Action = ActionCreated
		if f.targetID != "" || f.haveLast {
			d.Action = ActionUpdated // an upsert endpoint updating what it has
		}
	default:
		d.Action, d.Reason = ActionSkipped, "no_write_for_state"
		return false
	}
	return true
}

// send records a create's intent, then sends the write.
func (wr *writer) send(ctx context.Context, d Decision, f found, payload map[string]any, v *mapping.Vars) (Decision, Written) {
	if wr.batch != nil {
		return wr.queue(d, f, payload, v)
	}
	ru, u, key := wr.ru, &wr.ru.p.Upsert, d.RecordKey
	// Record the create before it leaves, so a crash before this page
	// commits cannot hide it (an upsert endpoint with no find needs no
	// record: sending it again is safe by declaration).
	recorded := false
	if f.targetID == "" && !(u.Idempotent && u.Find == nil) {
		if err := wr.intents.record(ctx, Intent{Pipeline: ru.p.Name, RecordKey: key, PayloadHash: f.hash}); err != nil {
			return ru.failDecision(key, "state", ClassRetryable, err), Written{}
		}
		recorded = true
	}
	var w Written
	var err error
	if d.Action == ActionUpdated {
		w, err = wr.tgt.Update(ctx, payload, v)
	} else {
		w, err = wr.tgt.Create(ctx, payload, v)
	}
	if err == nil || isNotOK(err) {
		ru.r.crash.hit(CrashAfterWrite)
	}
	if err != nil {
		reason, class := reasonFor(err), ClassOf(err)
		if rule, ok := classify(ctx, u.Classify, err, v); ok {
			if rule.Skip && !MaybeApplied(err) {
				if recorded {
					_ = ru.r.state.AbandonCreate(context.WithoutCancel(ctx), ru.p.Name, key)
				}
				return Decision{Pipeline: ru.p.Name, RecordKey: key, Action: ActionSkipped, Reason: rule.Reason, TargetID: d.TargetID}, Written{}
			}
			if !rule.Skip {
				reason, class = rule.Reason, rule.Class
			}
		}
		fd := ru.failDecision(key, reason, class, err)
		// The connector knows whether the request left: a run stopped by a
		// refused login or a signal before sending must not leave the
		// record flagged for a person to check.
		fd.Unconfirmed = recorded && MaybeApplied(err)
		if recorded && !fd.Unconfirmed {
			// Best effort: the page commit clears it too, if it comes.
			_ = ru.r.state.AbandonCreate(context.WithoutCancel(ctx), ru.p.Name, key)
		}
		return fd, Written{}
	}
	ru.countWrite(u.Connector)
	d.Reason = ""
	if d.Action == ActionCreated && w.ID != "" {
		d.TargetID = w.ID
	}
	if d.TargetID == "" && u.Find == nil {
		// An upsert endpoint keyed on the business key: the key is the
		// only id there is. With a find, an id the create did not return
		// stays unknown, and the next write finds it rather than sending
		// the key where the target expects its own id.
		d.TargetID = f.bkey
	}
	return withHash(d, f.hash, w.Transaction), w
}

// link is the ledger row a written (or found) item adds, if any.
func (wr *writer) link(key string, d Decision) *Link {
	if wr.linkName == "" {
		return nil // a native target (newWriter)
	}
	// A baseline found its target: the ledger learns the id.
	if d.TargetID == "" || d.Action == ActionUnchanged && d.Reason != ReasonBaseline {
		return nil
	}
	return &Link{SystemA: wr.srcName, IDA: key, SystemB: wr.linkName, IDB: d.TargetID, Pipeline: wr.ru.p.Name}
}

// ReasonBaseline marks a write recorded as delivered by the integration
// that ran before casesync (SyncOptions.Baseline), not sent.
const ReasonBaseline = "baseline"

// withHash carries the payload hash and transaction to the outcome.
func withHash(d Decision, hash string, txn any) Decision {
	d.Error = ""
	d.Class = ""
	d.Transaction = ScalarString(txn)
	d.PayloadHash = hash
	return d
}

// intentLog records create intents with group commit: the records that
// reach a create while an earlier batch is committing wait together, and
// the next transaction records all of their intents at once. Each create
// still leaves only after its own intent is committed.
type intentLog struct {
	state RunState
	clock Clock
	runID int64

	mu      sync.Mutex
	pending []Intent
	waiting []chan error
	busy    bool
}

// record returns once in is durably recorded.
func (l *intentLog) record(ctx context.Context, in Intent) error {
	ch := make(chan error, 1)
	l.mu.Lock()
	l.pending = append(l.pending, in)
	l.waiting = append(l.waiting, ch)
	lead := !l.busy
	l.busy = true
	l.mu.Unlock()
	if lead {
		l.flush(ctx)
	}
	return <-ch
}

// flush commits batches until none is waiting.
func (l *intentLog) flush(ctx context.Context) {
	for {
		l.mu.Lock()
		batch, waiting := l.pending, l.waiting
		l.pending, l.waiting = nil, nil
		if len(batch) == 0 {
			l.busy = false
			l.mu.Unlock()
			return
		}
		l.mu.Unlock()
		err := l.state.BeginCreates(ctx, l.runID, l.clock.Now().UTC(), batch)
		for _, ch := range waiting {
			ch <- err
		}
	}
}
