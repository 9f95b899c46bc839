// Package sandbox starts the faithful fakes (Primero, OSCaR, PING, HIS) on
// loopback ports, with the credentials the shipped specs expect, for the
// demo, the bench and end-to-end tests. It knows the fakes, not the engine.
package sandbox

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"casesync/internal/fakes/faults"
	"casesync/internal/fakes/his"
	"casesync/internal/fakes/oscar"
	"casesync/internal/fakes/ping"
	"casesync/internal/fakes/primero"
)

// Options size the seeded data and set fault switches.
type Options struct {
	Cases         int
	Clients       int
	Interventions int
	Decisions     int
	// People adds generated HIS patients after the fixed ones.
	People int
	// Thailand seeds Primero with ThailandCases, the cases the Thailand
	// deployment's webhooks name.
	Thailand bool
	// MoSVY seeds Primero as Cambodia's MoSVY instance: Cambodian cases
	// only, with protection concerns and disability types from Primero's
	// lookups (primero.Options.MoSVY), the values the ONA dashboard's
	// label tables cover.
	MoSVY     bool
	Seed      uint64
	CasesFrom []map[string]any
	// OSCaRFromCases gives the fake OSCaR every organisation and client
	// the CasesFrom cases refer to (see References), so a case file
	// exported from a real deployment is measured on its writes, not on
	// OSCaR's 500 for an unknown tenant or global_id.
	OSCaRFromCases bool
	Faults         faults.Config
	// Consistent seeds the fakes as one world, for the demo: PING knows
	// the interventions the Primero cases came from and its decisions
	// answer Primero's referrals to UNHCR, and no fake seeds its designed
	// edge cases (an unknown province, an intervention type off the
	// allow-list, an unknown status code, …), which the tests cover.
	Consistent bool
	// OSCaRAutoAccept has OSCaR accept every referral at once, as an NGO
	// user would, so the id sync-back flow has something to do.
	OSCaRAutoAccept bool
	// PingStatusDelay moves async ingestions on after this long.
	PingStatusDelay time.Duration
	// PrimeroLoginThrottle is primero.Options.LoginThrottle: logins per
	// user name and clock minute before 429 (default 6; negative, none).
	PrimeroLoginThrottle int
	// Secrets replace credentials by the shipped specs' secret names:
	// PRIMERO_USER, PRIMERO_PASSWORD, OSCAR_EMAIL, OSCAR_PASSWORD,
	// PING_CLIENT_ID, PING_USERNAME, PING_PASSWORD and
	// PING_SUBSCRIPTION_KEY are what the fakes then accept, and Secret
	// answers every entry, so a test can plant a canary secret.
	Secrets map[string]string
}

// Sandbox is a running set of fakes. Close stops them.
type Sandbox struct {
	Primero *primero.Server
	Oscar   *oscar.Server
	Ping    *ping.Server
	HIS     *his.Server
	// URLs maps connector names used by the shipped specs to base URLs.
	URLs    map[string]string
	secrets map[string]string
	servers []*http.Server
	once    sync.Once
}

// Start seeds and starts the fakes on 127.0.0.1 ports chosen by the OS.
func Start(opts Options) (*Sandbox, error) {
	s := &Sandbox{URLs: map[string]string{}}
	s.secrets = map[string]string{
		"PRIMERO_USER":          "openfn_cp_user",
		"PRIMERO_PASSWORD":      "primero-pass",
		"OSCAR_EMAIL":           oscar.DefaultEmail,
		"OSCAR_PASSWORD":        oscar.DefaultPassword,
		"PING_CLIENT_ID":        ping.DefaultClientID,
		"PING_USERNAME":         ping.DefaultUsername,
		"PING_PASSWORD":         ping.DefaultPassword,
		"PING_SUBSCRIPTION_KEY": ping.DefaultSubscriptionKey,
		"INBOX_SECRET":          "demo-inbox-secret",
		"PRIMERO_WEBHOOK_KEY":   "demo-webhook-key",
		"HIS_EMAIL":             his.DefaultEmail,
		"HIS_PASSWORD":          his.DefaultPassword,
	}
	for k, v := range opts.Secrets {
		s.secrets[k] = v
	}
	sec := s.secrets
	var refs References
	if opts.OSCaRFromCases {
		refs = ReferencesOf(opts.CasesFrom)
	}
	var addCases []map[string]any
	if opts.Thailand {
		addCases = ThailandCases()
	}
	s.Primero = primero.New(primero.Options{Cases: opts.Cases, Seed: opts.Seed, MoSVY: opts.MoSVY, CasesFrom: opts.CasesFrom, AddCases: addCases, Faults: opts.Faults,
		Login: sec["PRIMERO_USER"], Password: sec["PRIMERO_PASSWORD"], Orgs: refs.Orgs, LoginThrottle: opts.PrimeroLoginThrottle})
	s.Oscar = oscar.New(oscar.Options{Clients: opts.Clients, Seed: opts.Seed, AutoAccept: opts.OSCaRAutoAccept, Faults: opts.Faults,
		Email: sec["OSCAR_EMAIL"], Password: sec["OSCAR_PASSWORD"], Orgs: refs.Orgs, Clean: opts.Consistent})
	for _, c := range refs.Clients {
		s.Oscar.AddClient(c.Org, c.Fields)
	}
	po := ping.Options{Interventions: opts.Interventions, Decisions: opts.Decisions, Seed: opts.Seed, StatusDelay: opts.PingStatusDelay, Faults: opts.Faults,
		ClientID: sec["PING_CLIENT_ID"], Username: sec["PING_USERNAME"], Password: sec["PING_PASSWORD"], SubscriptionKey: sec["PING_SUBSCRIPTION_KEY"]}
	if opts.Consistent {
		// Decisions come from the referrals the engine sends, not from
		// seeded ones about referrals Primero never made.
		po.Clean, po.AutoDecide, po.Decisions = true, true, 0
		po.Transferred = transferred(s.Primero)
	}
	s.Ping = ping.New(po)
	s.HIS = his.New(his.Options{People: opts.People, Seed: opts.Seed, Faults: opts.Faults, Email: sec["HIS_EMAIL"], Password: sec["HIS_PASSWORD"]})
	for _, h := range []struct {
		names []string
		h     http.Handler
	}{{[]string{"primero"}, s.Primero}, {[]string{"oscar"}, s.Oscar}, {[]string{"ping", "progres"}, s.Ping}, {[]string{"his"}, s.HIS}} {
		u, err := s.serve(h.h)
		if err != nil {
			s.Close()
			return nil, err
		}
		for _, n := range h.names {
			s.URLs[n] = u
		}
	}
	return s, nil
}

func (s *Sandbox) serve(h http.Handler) (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("listen: %w", err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	s.servers = append(s.servers, srv)
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			_ = err // the listener is ours; a failure shows as refused requests
		}
	}()
	return "http://" + ln.Addr().String(), nil
}

// Secret answers the credentials the fakes accept, under the names the
// shipped specs declare.
func (s *Sandbox) Secret(name string) (string, bool) {
	v, ok := s.secrets[name]
	return v, ok
}

// Close stops every fake. It is safe to call twice.
func (s *Sandbox) Close() {
	s.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		for _, srv := range s.servers {
			_ = srv.Shutdown(ctx)
		}
	})
}

// transferred reads, from the Primero cases, the proGres interventions
// their services came from ("number,lpinterventionid,business unit").
func transferred(p *primero.Server) []ping.TransferredIntervention {
	var known []ping.TransferredIntervention
	for _, c := range p.Cases() {
		rows, _ := c["services_section"].([]any)
		for _, row := range rows {
			s, _ := row.(map[string]any)
			if num, _ := s["progres_interventionnumber"].(string); num != "" {
				if p := strings.Split(num, ","); len(p) >= 3 && p[1] != "" && p[2] != "" {
					known = append(known, ping.TransferredIntervention{ID: p[1], Number: p[0], BusinessUnit: p[2]})
				}
			}
		}
	}
	return known
}
