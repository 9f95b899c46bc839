package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/spf13/cobra"

	"casesync/internal/fakes/faults"
	"casesync/internal/fakes/his"
	"casesync/internal/fakes/oscar"
	"casesync/internal/fakes/ping"
	"casesync/internal/fakes/primero"
)

const fakeLong = `Fake runs one of the bundled fake servers standalone, so an implementer can
try a spec against it: point the spec's connector at it with --base-url.
The fakes behave like the real APIs (auth, paging, filters, validation
errors) as described in the project's API references, with synthetic
seeded data (invented people only) and switchable faults.

Credentials the fakes accept:
  primero  user openfn_cp_user, password primero-pass
  oscar    email api.user@example.org, password oscar-pass
  ping     the Default* values of internal/fakes/ping (printed at start)
  his      email his.integration@example.org, password his-pass (the
           fixed patients of internal/fakes/his, then --records generated)

Exit codes: 0 stopped by a signal; 1 the server failed; 2 usage error or
the address cannot be listened on.`

type fakeFlags struct {
	addr       string
	records    int
	seed       uint64
	latency    time.Duration
	jitter     time.Duration
	rate500    float64
	rate429    float64
	retryAfter int
	drop       float64
	autoAccept bool
}

func (a *app) fakeCmd() *cobra.Command {
	var f fakeFlags
	cmd := &cobra.Command{
		Use:   "fake primero|oscar|ping|his",
		Short: "Run a fake Primero, OSCaR, PING or HIS server for trying specs",
		Long:  fakeLong,
		Example: `  # Two fakes (one answering 10% of requests with 500), then a preview
  # against them with the credentials they print
  engine fake primero --addr 127.0.0.1:8081 --records 500
  engine fake oscar --addr 127.0.0.1:8082 --rate-500 0.1 --latency 20ms
  PRIMERO_USER=openfn_cp_user PRIMERO_PASSWORD=primero-pass \
  OSCAR_EMAIL=api.user@example.org OSCAR_PASSWORD=oscar-pass \
    engine dry-run cases_to_oscar --specs specs/example --limit 20 \
      --base-url primero=http://127.0.0.1:8081 --base-url oscar=http://127.0.0.1:8082`,
		Args:      cobra.ExactArgs(1),
		ValidArgs: []string{"primero", "oscar", "ping", "his"},
		RunE: func(cmd *cobra.Command, args []string) error {
			fc := faults.Config{Latency: f.latency, Jitter: f.jitter, Rate500: f.rate500, Rate429: f.rate429, RetryAfter: f.retryAfter, RateDrop: f.drop}
			var h http.Handler
			var creds string
			switch args[0] {
			case "primero":
				h = primero.New(primero.Options{Cases: f.records, Seed: f.seed, Faults: fc})
				creds = "user openfn_cp_user / password primero-pass"
			case "oscar":
				h = oscar.New(oscar.Options{Clients: f.records, Seed: f.seed, Faults: fc, AutoAccept: f.autoAccept})
				creds = "email " + oscar.DefaultEmail + " / password " + oscar.DefaultPassword
			case "ping":
				h = ping.New(ping.Options{Interventions: f.records, Decisions: f.records / 2, Seed: f.seed, Faults: fc, StatusDelay: time.Second})
				creds = fmt.Sprintf("client %s, user %s / password %s, subscription key %s", ping.DefaultClientID, ping.DefaultUsername, ping.DefaultPassword, ping.DefaultSubscriptionKey)
			case "his":
				h = his.New(his.Options{People: f.records, Seed: f.seed, Faults: fc})
				creds = "email " + his.DefaultEmail + " / password " + his.DefaultPassword
			default:
				return usageError("unknown fake %q: choose primero, oscar, ping or his", args[0])
			}
			ln, err := net.Listen("tcp", f.addr)
			if err != nil {
				return &exitError{code: 2, err: err}
			}
			fmt.Fprintf(a.stdout, "fake %s listening on http://%s (%d records; credentials: %s)\n", args[0], ln.Addr(), f.records, creds)
			srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
			go func() {
				<-cmd.Context().Done()
				ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
				defer cancel()
				srv.Shutdown(ctx)
			}()
			if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				return &exitError{code: 1, err: err}
			}
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.addr, "addr", "127.0.0.1:8081", "listen address")
	fl.IntVar(&f.records, "records", 1000, "seeded records (cases, clients or interventions)")
	fl.Uint64Var(&f.seed, "seed", 1, "seed of the synthetic data")
	fl.DurationVar(&f.latency, "latency", 0, "added latency per request")
	fl.DurationVar(&f.jitter, "jitter", 0, "extra random latency up to this")
	fl.Float64Var(&f.rate500, "rate-500", 0, "share of requests answered 500 (0..1)")
	fl.Float64Var(&f.rate429, "rate-429", 0, "share of requests answered 429 with Retry-After")
	fl.IntVar(&f.retryAfter, "retry-after", 1, "seconds in Retry-After of injected 429s")
	fl.Float64Var(&f.drop, "drop", 0, "share of connections dropped without an answer")
	fl.BoolVar(&f.autoAccept, "auto-accept", true, "oscar: accept referrals at once, as an NGO user would")
	return cmd
}
