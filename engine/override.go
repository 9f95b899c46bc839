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
