package rest

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"casesync/engine"
)

// newOffsetPaginator pages with offset/limit query parameters; the next
// offset is the number of records received so far.
func newOffsetPaginator(p *engine.Pagination) (paginator, error) {
	spec := p.Spec.Offset
	if spec == nil {
		return paginator{}, errors.New("missing settings")
	}
	s := *spec
	if s.OffsetParam == "" {
		s.OffsetParam = "offset"
	}
	if s.LimitParam == "" {
		s.LimitParam = "limit"
	}
	if s.Limit <= 0 {
		s.Limit = 100
	}
	total, err := compiled(p.Total, s.Total)
	if err != nil {
		return paginator{}, fmt.Errorf("total: %w", err)
	}
	return paginator{
		maxPages: maxPagesOr(s.MaxPages, 100000),
		start: func() pager {
			return &offsetPager{offset: s.OffsetParam, limit: s.LimitParam, counted: counted{size: s.Limit, total: total}}
		},
	}, nil
}

type offsetPager struct {
	offset, limit string
	counted
}

func (p *offsetPager) prepare(o *outbound, _ int) error {
	q := o.url.Query()
	q.Set(p.offset, strconv.Itoa(p.seen))
	q.Set(p.limit, strconv.Itoa(p.size))
	o.url.RawQuery = q.Encode()
	return nil
}

func (p *offsetPager) next(ctx context.Context, _ *outbound, resp *Response, got int) (bool, int, error) {
	return p.counted.next(ctx, resp, got)
}
