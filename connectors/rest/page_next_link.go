package rest

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"casesync/engine"
	"casesync/engine/mapping"
)

// newNextLinkPaginator follows the next page's URL, read from the body with
// jq and/or from a Link header (rel="next"); jq wins when both give one.
func newNextLinkPaginator(p *engine.Pagination) (paginator, error) {
	spec := p.Spec.NextLink
	if spec == nil {
		return paginator{}, errors.New("missing settings")
	}
	jq, err := compiled(p.Next, spec.JQ)
	if err != nil {
		return paginator{}, fmt.Errorf("jq: %w", err)
	}
	if jq == nil && !spec.LinkHeader {
		return paginator{}, errors.New("needs jq or link_header")
	}
	return paginator{
		maxPages: maxPagesOr(spec.MaxPages, 100000),
		start:    func() pager { return &nextLinkPager{jq: jq, header: spec.LinkHeader} },
	}, nil
}

type nextLinkPager struct {
	jq     *mapping.JQ
	header bool
	link   *url.URL
}

func (p *nextLinkPager) prepare(o *outbound, n int) error {
	if n > 1 {
		// The link is the whole next request: its query replaces ours.
		u := *p.link
		o.url = &u
	}
	return nil
}

func (p *nextLinkPager) next(ctx context.Context, o *outbound, resp *Response, _ int) (bool, int, error) {
	link := ""
	if p.jq != nil {
		v, err := p.jq.One(ctx, resp.Body, nil)
		if err != nil {
			return false, -1, fmt.Errorf("next link: %w", err)
		}
		switch x := v.(type) {
		case nil:
		case string:
			link = x
		default:
			return false, -1, fmt.Errorf("next link: want a URL or null, got %T", v)
		}
	}
	if link == "" && p.header {
		link = linkNext(resp.Header)
	}
	if link == "" {
		return false, -1, nil
	}
	next, err := o.url.Parse(link)
	if err != nil {
		return false, -1, errors.New("next link is not a URL")
	}
	// Our credentials go with the next request, so it must stay on the host
	// we were configured for.
	if next.Scheme != o.url.Scheme || next.Host != o.url.Host {
		return false, -1, fmt.Errorf("next link leaves %s for %s", o.url.Host, next.Host)
	}
	if next.String() == o.url.String() {
		return false, -1, fmt.Errorf("%w: next link repeats the current page", errInconsistent)
	}
	p.link = next
	return true, -1, nil
}

// linkNext finds rel="next" in Link headers (RFC 8288):
// <https://h/p?page=2>; rel="next", <...>; rel="last".
func linkNext(h http.Header) string {
	for _, line := range h.Values("Link") {
		for _, part := range splitLinks(line) {
			target, params, ok := strings.Cut(part, ";")
			if !ok {
				continue
			}
			target = strings.TrimSpace(target)
			if !strings.HasPrefix(target, "<") || !strings.HasSuffix(target, ">") {
				continue
			}
			for _, param := range strings.Split(params, ";") {
				k, v, _ := strings.Cut(strings.TrimSpace(param), "=")
				if !strings.EqualFold(strings.TrimSpace(k), "rel") {
					continue
				}
				for _, rel := range strings.Fields(strings.Trim(strings.TrimSpace(v), `"`)) {
					if strings.EqualFold(rel, "next") {
						return target[1 : len(target)-1]
					}
				}
			}
		}
	}
	return ""
}

// splitLinks splits a Link header at the commas between links, not those
// inside <...> or quotes.
func splitLinks(s string) []string {
	var out []string
	depth, quoted, start := 0, false, 0
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"':
			quoted = !quoted
		case quoted:
		case c == '<':
			depth++
		case c == '>':
			depth--
		case c == ',' && depth == 0:
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return append(out, s[start:])
}
