package engine

// WithBaseURLs returns a copy of the plan whose named connectors point at
// other base URLs (the demo's fakes, a staging server). The original plan
// is not touched: plans are never mutated once built.
func (p *Plan) WithBaseURLs(urls map[string]string) *Plan {
	if len(urls) == 0 {
		return p
	}
	cp := *p
	cp.Connectors = make(map[string]*Connector, len(p.Connectors))
	for name, c := range p.Connectors {
		if u, ok := urls[name]; ok {
			cc := *c
			cc.Spec.BaseURL = u
			c = &cc
		}
		cp.Connectors[name] = c
	}
	return &cp
}

// WithConcurrency returns a copy of the plan whose connectors allow n
// requests in flight and whose pipelines keep 2n records in flight, so
// that a source and a target connector are both kept busy (the bench's
// --concurrency).
func (p *Plan) WithConcurrency(n int) *Plan {
	if n <= 0 {
		return p
	}
	cp := *p
	cp.Connectors = make(map[string]*Connector, len(p.Connectors))
	for name, c := range p.Connectors {
		cc := *c
		cc.Spec.Concurrency = n
		cp.Connectors[name] = &cc
	}
	cp.Pipelines = make(map[string]*Pipeline, len(p.Pipelines))
	for name, pl := range p.Pipelines {
		pc := *pl
		pc.Concurrency = 2 * n
		cp.Pipelines[name] = &pc
	}
	return &cp
}
