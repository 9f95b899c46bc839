package engine

import (
	"context"
	"errors"
	"fmt"

	"casesync/engine/mapping"
)

// Delivery is one webhook delivery as an inbox reads it: the body and the
// envelope its programs see ({headers, query, body}).
type Delivery struct {
	Body    any
	Headers map[string]any
	Query   map[string]any
}

// Envelope is the value trigger.inbox.event and dedupe.id run on.
func (d Delivery) Envelope() map[string]any {
	h, q := d.Headers, d.Query
	if h == nil {
		h = map[string]any{}
	}
	if q == nil {
		q = map[string]any{}
	}
	return map[string]any{"headers": h, "query": q, "body": d.Body}
}

// Receive works out what an inbox makes of a delivery: the record key to
// re-fetch (with fetch) or the record itself and its key (without), and
// the delivery as $delivery sees it ({id, event, query, headers}). The
// daemon stores what it returns; dry-run --from runs it on each item of
// its file, so a webhook body previews as it would be processed.
func (in *Inbox) Receive(ctx context.Context, p *Pipeline, d Delivery, id string, v *mapping.Vars) (rec any, key string, delivery map[string]any, err error) {
	env := d.Envelope()
	delivery = map[string]any{"id": id, "event": nil, "query": env["query"], "headers": env["headers"]}
	if in.Event != nil {
		ev, err := in.Event.One(ctx, env, v)
		if err != nil {
			return nil, "", nil, fmt.Errorf("trigger.inbox.event (%s): %w", in.Pos, err)
		}
		delivery["event"] = ev
	}
	kv, err := in.Key.One(ctx, d.Body, v)
	if err != nil {
		return nil, "", nil, fmt.Errorf("trigger.inbox.key (%s): %w", in.Pos, err)
	}
	if in.Fetch != nil {
		if key = ScalarString(kv); key == "" {
			return nil, "", nil, fmt.Errorf("trigger.inbox.key (%s) yields no record key", in.Pos)
		}
		return nil, key, delivery, nil
	}
	rec = kv
	if _, isObj := kv.(map[string]any); !isObj {
		rec = d.Body
	}
	k, err := p.Source.Key.One(ctx, rec, v)
	if err != nil {
		return nil, "", nil, fmt.Errorf("source.key on the delivered record: %w", err)
	}
	if key = ScalarString(k); key == "" {
		return nil, "", nil, errors.New("source.key yields no key for the delivered record")
	}
	return rec, key, delivery, nil
}
