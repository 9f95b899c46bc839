package rest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"casesync/engine"
	"casesync/engine/mapping"
)

// newBodyCursorPaginator carries a continuation in the request body: jq on
// each response yields an object merged into the next request's body (for
// example a paging cookie and the next page number), or null at the end.
func newBodyCursorPaginator(p *engine.Pagination) (paginator, error) {
	spec := p.Spec.BodyCursor
	if spec == nil {
		return paginator{}, errors.New("missing settings")
	}
	jq, err := compiled(p.Next, spec.Next)
	if err != nil {
		return paginator{}, fmt.Errorf("next: %w", err)
	}
	if jq == nil {
		return paginator{}, errors.New("needs next")
	}
	return paginator{
		maxPages: maxPagesOr(spec.MaxPages, 1000),
		start:    func() pager { return &bodyCursorPager{jq: jq} },
	}, nil
}

type bodyCursorPager struct {
	jq     *mapping.JQ
	cursor map[string]any
	last   []byte // the cursor as sent, to catch a server that repeats it
}

func (p *bodyCursorPager) prepare(o *outbound, n int) error {
	if n == 1 {
		return nil
	}
	body, err := mergeBody(o.body, p.cursor)
	if err != nil {
		return err
	}
	o.body = body
	return nil
}

func (p *bodyCursorPager) next(ctx context.Context, _ *outbound, resp *Response, _ int) (bool, int, error) {
	v, err := p.jq.One(ctx, resp.Body, nil)
	if err != nil {
		return false, -1, fmt.Errorf("next: %w", err)
	}
	if v == nil {
		return false, -1, nil
	}
	m, ok := v.(map[string]any)
	if !ok {
		return false, -1, fmt.Errorf("next: want an object or null, got %T", v)
	}
	enc, err := json.Marshal(m)
	if err != nil {
		return false, -1, fmt.Errorf("next: %w", err)
	}
	if p.last != nil && bytes.Equal(enc, p.last) {
		return false, -1, fmt.Errorf("%w: the cursor did not advance", errInconsistent)
	}
	p.cursor, p.last = m, enc
	return true, -1, nil
}
