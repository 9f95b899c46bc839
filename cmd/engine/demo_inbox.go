package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"time"

	"casesync/engine"
	"casesync/internal/fakes/primero"
	"casesync/internal/inboxrun"
	"casesync/internal/sandbox"
)

// inboxOnly lists the plan's pipelines that take records from their inbox
// only: the demo drives them with webhooks, not with runs.
func inboxOnly(plan *engine.Plan) []string {
	var out []string
	for _, n := range plan.Order {
		if p := plan.Pipelines[n]; p.Inbox != nil && p.Source.NoListing {
			out = append(out, n)
		}
	}
	return out
}

// demoInbox drives an inbox-only pipeline the way its sender would: the
// daemon serves the inbox, the fake Primero's webhooks (one per event, the
// event in the query) point at it, the deployment's webhook fixtures are
// posted, Sync is pressed on the other seeded cases, and then once more on
// a case already synced. It prints what the engine did beside the fakes'
// own counts. failed reports a count that disagrees.
func (a *app) demoInbox(ctx context.Context, w io.Writer, plan *engine.Plan, sb *sandbox.Sandbox, statePath string, log *slog.Logger) (failed bool, err error) {
	in, err := inboxrun.Start(inboxrun.Options{Plan: plan, Secrets: sb, StatePath: statePath, Log: log})
	if err != nil {
		return false, &exitError{code: 2, err: err}
	}
	defer in.Close()
	for _, name := range inboxOnly(plan) {
		p := plan.Pipelines[name]
		key := ""
		if p.Inbox.Secret.Secret != "" {
			key, _ = sb.Secret(p.Inbox.Secret.Secret)
		}
		if p.Source.Connector != "primero" {
			fmt.Fprintf(w, "  %-28s skipped: the demo sends webhooks from Primero only\n", name)
			continue
		}
		for _, ev := range []string{primero.EventCaseCreate, primero.EventCasePost, primero.EventCaseUpdate} {
			sb.Primero.AddWebhook(primero.Webhook{URL: in.URL + p.Inbox.Path + "?event=" + ev, Events: []string{ev},
				AuthType: primero.WebhookAPIKey, Secret: key, Role: "role-integration"})
		}
		settle := func() error {
			return in.Settle(ctx, name, sb.Primero.WaitDeliveries, time.Minute)
		}
		hdr := http.Header{http.CanonicalHeaderKey(p.Inbox.Header): {key}}
		fixtures := sandbox.ThailandWebhooks()
		for _, body := range fixtures {
			st, err := in.Post(ctx, p.Inbox.Path+"?event="+primero.EventCasePost, hdr, body)
			if err != nil || st != http.StatusAccepted {
				return true, &exitError{code: 1, err: fmt.Errorf("%s: the inbox answered %d to a webhook fixture: %v", name, st, err)}
			}
		}
		// Not ThaiCaseNoID: a case without a national id fails
		// national_id_missing, a refusal specs/thailand/tests and
		// TestThailand_SyncFlow cover; a newcomer's run shows none.
		presses := []string{sandbox.ThaiCaseNotFound, sandbox.ThaiCaseNoDates}
		for _, id := range presses {
			if err := pressSync(ctx, sb, id); err != nil {
				return true, &exitError{code: 1, err: err}
			}
		}
		if err := settle(); err != nil {
			return true, &exitError{code: 1, err: err}
		}
		fmt.Fprintf(w, "  posted the %d webhook fixtures to %s (event case.post), pressed Sync on %d more cases\n", len(fixtures), p.Inbox.Path, len(presses))
		before := demoInboxCounts(in, sb, name)
		failed = printInboxPass(w, name, in.Results(), len(fixtures)+len(presses), before, demoCounts{}) || failed
		fmt.Fprintln(w, "  not_found: a case whose national id HIS does not know; the engine writes no patient data to it and answers its Sync with mark_synced_status not_found, which Primero shows the user.")

		// A second identical press: a new request, processed and answered.
		if err := pressSync(ctx, sb, sandbox.ThaiCaseMinimal); err != nil {
			return true, &exitError{code: 1, err: err}
		}
		if err := settle(); err != nil {
			return true, &exitError{code: 1, err: err}
		}
		fmt.Fprintln(w, "  second pass — Sync pressed again on a case already synced. A press is a new request, not an unchanged source:")
		fmt.Fprintln(w, "  Primero set the case's sync_status to sending and waits for an answer, so the engine reads HIS again and")
		fmt.Fprintln(w, "  writes one PATCH (the HIS values and mark_synced_status synced). One press, one write; the fakes count the same:")
		res := in.Results()
		failed = printInboxPass(w, name, res[len(before.runs):], 1, demoInboxCounts(in, sb, name), before) || failed
	}
	return failed, nil
}

// demoCounts are the counts a pass is judged by: the engine's and the
// fakes' own.
type demoCounts struct {
	runs          []*engine.RunResult
	enginePrimero int // writes the engine counted
	engineHIS     int // HIS requests the engine made
	fakePrimero   int // writes the fake Primero applied
	fakeHIS       int // findOne requests the fake HIS served
	patches       int // PATCHes the fake Primero applied
	echoes        int // case.update webhooks Primero sent after the engine's writes
}

func demoInboxCounts(in *inboxrun.Runner, sb *sandbox.Sandbox, name string) demoCounts {
	c := demoCounts{runs: in.Results()}
	for _, r := range c.runs {
		if r.Pipeline == name {
			c.enginePrimero += r.Writes["primero"]
		}
	}
	c.engineHIS = in.Calls()["his"]
	c.fakePrimero = int(sb.Primero.Counters().TotalWrites())
	c.fakeHIS = int(sb.HIS.Counters().Requests()["GET /people/findOne"])
	c.patches = int(sb.Primero.Counters().Writes()["update"])
	for _, d := range sb.Primero.Deliveries() {
		if d.Event == primero.EventCaseUpdate && d.Status == "sent" {
			c.echoes++
		}
	}
	return c
}

// printInboxPass prints the runs of a pass as one line of totals, then
// the engine's counts beside the fakes'; true when they disagree.
func printInboxPass(w io.Writer, name string, runs []*engine.RunResult, presses int, now, before demoCounts) bool {
	total := &engine.RunResult{Pipeline: name + " (" + fmt.Sprint(len(runs)) + " runs)", Reasons: map[string]int{}}
	for _, r := range runs {
		if r.Pipeline != name {
			continue
		}
		c := &total.Counts
		c.Read += r.Counts.Read
		c.Created += r.Counts.Created
		c.Updated += r.Counts.Updated
		c.Unchanged += r.Counts.Unchanged
		c.Skipped += r.Counts.Skipped
		c.Failed += r.Counts.Failed
		for k, n := range r.Reasons {
			total.Reasons[k] += n
		}
		for k, n := range r.Counts.LookupMisses {
			if c.LookupMisses == nil {
				c.LookupMisses = map[string]int{}
			}
			c.LookupMisses[k] += n
		}
	}
	printDemoResult(w, total)
	if m := total.Counts.LookupMisses; len(m) > 0 {
		fmt.Fprintf(w, "  %-28s lookup misses (lookup:policy): %s\n", "", notesText(m))
		fmt.Fprintf(w, "  %-28s (a value with no row in that lookup table, handled as the lookup's on_miss says: null leaves the field out rather than guess)\n", "")
	}
	d := func(a, b int) int { return a - b }
	engP, fakeP := d(now.enginePrimero, before.enginePrimero), d(now.fakePrimero, before.fakePrimero)
	engH, fakeH := d(now.engineHIS, before.engineHIS), d(now.fakeHIS, before.fakeHIS)
	fmt.Fprintf(w, "  writes applied, by the fakes' own count: primero %d (engine's count %d); HIS findOne %d (engine's count %d)\n", fakeP, engP, fakeH, engH)
	patches := d(now.patches, before.patches)
	fmt.Fprintf(w, "  Primero fired %d case.update webhook(s) after the engine's PATCHes, each dropped as the echo (not_a_sync_event): %d PATCH(es) for %d Sync press(es)\n",
		d(now.echoes, before.echoes), patches, presses)
	return engP != fakeP || engH != fakeH || patches != presses
}

// pressSync is a user pressing Sync on a case in the fake Primero.
func pressSync(ctx context.Context, sb *sandbox.Sandbox, id string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, sb.URLs["primero"]+"/api/v2/cases/"+id+"/sync", nil)
	if err != nil {
		return err
	}
	user, _ := sb.Secret("PRIMERO_USER")
	pass, _ := sb.Secret("PRIMERO_PASSWORD")
	req.SetBasicAuth(user, pass)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("press Sync on case %s: status %d", id, resp.StatusCode)
	}
	return nil
}
