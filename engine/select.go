package engine

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"casesync/engine/mapping"
)

// selector is the select stage: it keys a source record, notes its cursor
// value, drops a repeat, applies the filters, skips a version already
// handled, and fans a record out into its items.
type selector struct {
	ru *run
	// skipSame: a record whose version was handled already is skipped
	// before enrich.
	skipSame bool

	mu sync.Mutex
	// seen and seenPrev hold 16-byte digests of the keys read on this
	// page and the one before. A record listed twice in one run because an
	// insert shifted the pages shows up on the next page, which these
	// catch; a repeat further away (the record changed and moved) is
	// handled again, and its link, source version and payload hash make
	// that an update or no write at all. Keeping two pages instead of
	// every key is what keeps memory flat as the listing grows.
	seen, seenPrev map[[16]byte]struct{}
}

func newSelector(ru *run) *selector {
	return &selector{ru: ru, seen: map[[16]byte]struct{}{}}
}

// selected is a source record that passed the select stage.
type selected struct {
	key string
	// cursor is the record's cursor value, kept with a failure so a retry
	// can re-list from there.
	cursor string
	// version is the record's source version ("" when unknown).
	version string
	rec     map[string]any
	// delivery is the webhook delivery the record came in ($delivery).
	delivery any
}

// item is one write a record fans out into: its record key (key, or
// key#item) and the input its mapping reads.
type item struct {
	key   string
	input any
}

// mark ties outcomes to their source record and, when every item was
// handled, to the record's version.
func (s *selected) mark(outs []Outcome) []Outcome {
	version := s.version
	for _, o := range outs {
		switch o.Action {
		case ActionCreated, ActionUpdated, ActionUnchanged:
		default:
			version = ""
		}
	}
	for i := range outs {
		outs[i].SourceKey, outs[i].SourceVersion = s.key, version
	}
	return outs
}

// newPage starts a page: the keys of the page before it are kept.
func (s *selector) newPage(n int) {
	s.mu.Lock()
	s.seenPrev, s.seen = s.seen, make(map[[16]byte]struct{}, n)
	s.mu.Unlock()
}

// forget drops every key read so far.
func (s *selector) forget() {
	s.mu.Lock()
	clear(s.seen)
	clear(s.seenPrev)
	s.mu.Unlock()
}

// keyOf is a record's source key, or a stand-in naming its content's hash
// for a record without one.
func (s *selector) keyOf(ctx context.Context, rec any) string {
	if k := s.key(ctx, rec); k != "" {
		return k
	}
	return fmt.Sprintf("unkeyed-%s", shortHash(rec))
}

func (s *selector) key(ctx context.Context, rec any) string {
	kv, err := s.ru.p.Source.Key.One(ctx, rec, s.ru.vars)
	if err != nil {
		return ""
	}
	return ScalarString(kv)
}

// keys lists the source keys of a page's records.
func (s *selector) keys(ctx context.Context, records []any) []string {
	keys := make([]string, 0, len(records))
	for _, rec := range records {
		keys = append(keys, s.keyOf(ctx, rec))
	}
	return keys
}

// choose selects a record, or returns the outcome that ends it here
// (none for a repeat already handled on this page or the one before).
func (s *selector) choose(ctx context.Context, rec any, kn *Known) (*selected, []Outcome) {
	ru := s.ru
	key := s.key(ctx, rec)
	if key == "" {
		return nil, []Outcome{ru.fail(fmt.Sprintf("unkeyed-%s", shortHash(rec)), "", "no_key", ClassData, fmt.Errorf("source.key yields no value"))}
	}
	sel := &selected{key: key, cursor: ru.read.cursorOf(ctx, rec)}
	if s.repeat(key) {
		// The same record twice in one listing (an insert shifted the
		// pages): it was handled once already.
		return nil, nil
	}
	m, _ := rec.(map[string]any)
	if m == nil {
		return nil, sel.mark([]Outcome{ru.fail(key, sel.cursor, "not_an_object", ClassData, fmt.Errorf("source record is not an object"))})
	}
	sel.rec = m
	sel.delivery = withOwnWrite(ru.deliveryOf(key), kn.Records[key])
	fv := *ru.vars
	fv.Delivery = sel.delivery
	env := mapping.ExprEnvFor(m, &fv)
	for _, f := range ru.p.Filters {
		ok, err := f.Expr.Bool(env)
		if err != nil {
			return nil, sel.mark([]Outcome{ru.fail(key, sel.cursor, evalReason(err, "filter_error"), ClassData, fmt.Errorf("filter %s (%s): %w", f.Reason, f.Pos, err))})
		}
		if !ok {
			// Rows the record wrote before leave the target with it (when
			// the upsert says so); a record that wrote its own row has
			// that removal as its outcome.
			outs := ru.write.left(key, nil, kn, sel.cursor)
			if !slices.ContainsFunc(outs, func(o Outcome) bool { return o.RecordKey == key }) {
				outs = append(outs, ru.outcome(Decision{RecordKey: key, Action: ActionSkipped, Reason: f.Reason}, sel.cursor, nil))
			}
			return nil, sel.mark(outs)
		}
	}
	// A record re-read in the overlap window (or a re-listing) whose
	// version was handled already: skip it before any request.
	sel.version = s.sourceVersion(ctx, m)
	if sel.version != "" && s.skipSame && kn.Versions[key] == sel.version {
		return nil, sel.mark([]Outcome{ru.outcome(Decision{RecordKey: key, Action: ActionUnchanged, Reason: "same_source_version"}, sel.cursor, nil)})
	}
	return sel, nil
}

// repeat counts a record read and reports whether its key was read on
// this page or the one before.
func (s *selector) repeat(key string) bool {
	digest := keyDigest(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	_, dup := s.seen[digest]
	if !dup {
		_, dup = s.seenPrev[digest]
	}
	s.seen[digest] = struct{}{}
	s.ru.mu.Lock()
	s.ru.counts.Read++
	s.ru.mu.Unlock()
	return dup
}

// sourceVersion identifies one version of a source record as this spec
// handles it: the source's updated value and the spec hash, hashed, so the
// state holds no time from a case and a spec change makes every record new.
func (s *selector) sourceVersion(ctx context.Context, m map[string]any) string {
	u := s.ru.p.Source.Updated
	if u == nil {
		return ""
	}
	v, err := u.One(ctx, m, s.ru.vars)
	if err != nil || ScalarString(v) == "" {
		return ""
	}
	return shortHash([]string{ScalarString(v), s.ru.r.plan.Hash})
}

// fanOut lists a record's items: the record itself, or one per value of
// each.jq keyed by each.key. ok is false when the record ends here.
func (s *selector) fanOut(ctx context.Context, sel *selected) ([]item, Outcome, bool) {
	ru := s.ru
	each := ru.p.Each
	if each == nil {
		return []item{{key: sel.key, input: sel.rec}}, Outcome{}, true
	}
	// The each program and the keys of its items share one deadline.
	ctx, cancel := each.JQ.Limits().Bounded(ctx)
	defer cancel()
	vals, err := each.JQ.All(ctx, sel.rec, ru.vars)
	if err != nil {
		// skip($reason) or fail($reason) in each ends the whole record
		// with that reason, as a filter would: the predicate that picks
		// the items says once why none of them goes.
		var skip *mapping.SkipError
		var fe *mapping.FailError
		if errors.As(err, &skip) || errors.As(err, &fe) {
			return nil, ru.mapFailure(sel.key, sel.cursor, err), false
		}
		return nil, ru.fail(sel.key, sel.cursor, "each", ClassData, fmt.Errorf("each: %w", err)), false
	}
	if len(vals) == 1 {
		if arr, ok := vals[0].([]any); ok {
			vals = arr
		}
	}
	items := make([]item, 0, len(vals))
	for _, v := range vals {
		kv, err := each.Key.One(ctx, v, ru.vars)
		if err != nil || ScalarString(kv) == "" {
			return nil, ru.fail(sel.key, sel.cursor, "each_key", ClassData, fmt.Errorf("each.key yields no value")), false
		}
		items = append(items, item{key: sel.key + "#" + ScalarString(kv), input: v})
	}
	if len(items) == 0 {
		return nil, ru.outcome(Decision{RecordKey: sel.key, Action: ActionSkipped, Reason: "nothing_to_write"}, sel.cursor, nil), false
	}
	return items, Outcome{}, true
}

// keyDigest is the first 16 bytes of the key's SHA-256: collisions are not
// a practical concern at any listing size.
func keyDigest(key string) [16]byte {
	sum := sha256.Sum256([]byte(key))
	var d [16]byte
	copy(d[:], sum[:16])
	return d
}

// withOwnWrite adds own_write_age to a delivery: the seconds between the
// engine's last write of this record by this pipeline and the delivery's
// arrival (0 when the delivery came first, as an echo of a write whose page
// had not committed yet can), or null when the pipeline never wrote it.
// It is how a filter recognises the echo a target sends back after the
// engine's own write. The delivery given is never modified.
func withOwnWrite(delivery any, last RecordState) any {
	d, ok := delivery.(map[string]any)
	if !ok {
		return delivery
	}
	out := make(map[string]any, len(d)+1)
	for k, v := range d {
		out[k] = v
	}
	if last.Action != ActionCreated && last.Action != ActionUpdated || last.UpdatedAt.IsZero() {
		// The state knows no write: null, unless the delivery says (a
		// spec test's or a dry-run file's delivery).
		if _, given := d["own_write_age"]; !given {
			out["own_write_age"] = nil
		}
		return out
	}
	received, err := time.Parse(time.RFC3339Nano, ScalarString(d["received"]))
	if err != nil {
		return out
	}
	out["own_write_age"] = max(received.Sub(last.UpdatedAt).Seconds(), 0)
	return out
}
