// Package his is a faithful fake of the Thai Ministry of Public Health's
// HIS API as the Thailand Primero integration calls it (deployments.md
// §3.2): a LoopBack 3 application with a user model that logs in and a
// person model searched with a JSON filter. For tests
// (httptest.NewServer(his.New(opts))) and for `engine demo` / `engine fake his`.
//
// What it serves, as LoopBack does:
//   - POST /Users/login with {email, password} (or {username, password})
//     answers {"id": <token>, "ttl", "created", "userId"}; wrong
//     credentials are a 401 LOGIN_FAILED.
//   - GET /people/findOne?filter=<JSON> with the token as the access_token
//     query parameter or in the Authorization header (LoopBack reads both).
//     The filter's where.cid selects the person; include names the
//     relations to embed: "interventions" (the visits; a scope may give
//     order "vstdate DESC|ASC" and limit) and "riskmodel". A relation not
//     included is absent. No match is a 404 whose error.code is
//     MODEL_NOT_FOUND; a missing or unknown token a 401
//     AUTHORIZATION_REQUIRED; a filter that is not JSON a 400.
//
// It imports nothing of the engine: a fake that shares the engine's
// assumptions cannot catch its bugs.
//
// # Where the fake decides
//
// deployments.md names the person and visit fields the job reads but has no
// HIS response; the fake spells them as the job reads them (cid, hn,
// hcode, fname, lname, birthday, sex, marrystatus, educate, nation,
// informaddr, hometel, pttype_name, occupation_name; visits with id, vn,
// vstdate, vsttime, main_dep, spclty_name, diagnosis[], assessment[],
// anc[], homeservice) and, for laboratory results, which the reference
// leaves unnamed, HOSxP's own column names (lab[] with lab_items_code,
// lab_order_result, lab_items_unit, lab_items_normal_value). Visits without
// a vstdate sort last in a descending order and first in an ascending
// one. Dates are Thai local dates and times (UTC+7), as HIS stores them.
//
// # Seed data
//
// Every person is invented. The fixed patients (Patients) cover what the
// flow must handle: found with everything; two visits that both carry lab
// results; the newest visit at 00:20 Thai time (the previous day in UTC);
// visits without dates; a risk model with strings missing; a nationality
// code no table has; and a national id HIS does not know (NotFoundCID).
// The two national ids of the Primero webhook fixtures are among the
// fixed patients, so both fixtures find someone. Options.People adds
// generated patients (ids 2 000000 00000 0 upwards, check digit
// valid) for the bench.
package his
