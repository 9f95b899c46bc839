// Package oscar is a faithful in-process fake of the OSCaR interop API v1
// (Children-in-Families/oscar-web, the case system of Cambodian NGOs), for
// tests (httptest) and for `engine demo` / `engine fake oscar`.
//
// It owns the behaviour written down in shared/reference/oscar.md: the
// devise_token_auth sign-in (header sets valid a week, no rotation, at most
// ten per user), GET clients (integrated tenants in order, referred clients
// with an exact since comparison then every other visible client with a
// day-granular one, two serializer shapes, no paging, 500 HTML on a bad
// date), the upsert decision tree (global_id known → client update that
// nulls missing keys; otherwise pending referral keyed on external_id, the
// new global_id never returned; "Record was found." once accepted), the
// catalogue check on service names, update_links, and update_statuses
// (in order, no transaction, no auth). Where the real server answers an
// HTML 500 the fake does too; where it saves a write and then fails, so
// does the fake.
//
// It must not know the engine: it imports only the standard library and
// internal/fakes/faults, so it cannot share the engine's bugs.
//
// # Seed data
//
// New(Options{Clients: n, Seed: s}) builds n invented clients (names from
// syllable lists, Latin and Khmer) spread round-robin over the integrated
// tenants, with dates before BaseTime (2024-06-01 UTC) so goldens are
// stable. The same seed always gives the same data. The first eleven
// clients are placed on purpose, so any n ≥ 11 covers them:
//
//	0  referred to MoSVY, village in province 19 (Stung Treng)
//	1  referred, unknown province code 99…
//	2  Primero-originated and accepted (external_id set, referral Accepted)
//	3  shared, with programme enrolments
//	4  shared, unknown province code 99…
//	5  referred, level_of_risk "no action"
//	6  invisible: no date of birth
//	7  shared, local (Khmer) names only
//	8  shared, junk date of birth "22012-01-01"
//	9  Primero-originated, referral Exited
//	10 shared, same global_id as client 3 but in the next tenant
//
// All eleven were updated on 2024-05-31, an hour apart. The rest are mixed
// at random: about 20% referred to MoSVY (referred_external, one referral
// from the NGO with one or two catalogue services not enrolled, integer
// referral ids from 1001 per tenant, status mostly Referred, some Accepted
// or Exited), 7% Primero-originated (external_id, resource "primero"), 3%
// invisible (no DOB, blank gender or no names), the rest shared clients,
// 40% of them with one to three enrolments. Location codes cycle through
// all 25 provinces (01–25); 80% are villages (8 digits, leading zero kept),
// the rest communes, districts, provinces or none. Genders are mostly
// female/male with the other four values sprinkled in; 60% have Khmer
// local names; 10% carry null rather than "" ids. Dates: created in the two
// years before BaseTime; 60% never updated, 30% updated since, 10% updated
// on the last day. Besides the n clients there are ⌈n/25⌉ pending Primero
// referrals (a global identity with no client) for the "found, not yet
// accepted" branch. The tenant "demo" exists but is not integrated: it
// takes upserts and is never listed by GET clients.
//
// # Where the fake is a guess
//
// Read from the code or assumed, not observed: the fake has no gazetteer,
// so any digit code of up to 8 digits is a valid address; referrals added
// by an upsert with a known global_id are linked to the client; Accept
// links every pending referral of the same external_id and marks it
// Accepted; SetReferralStatus and update_links move the client's
// updated_at (the latter only when the ids change); a body that is not
// JSON gets Rails' 400; check_duplication matches exact names and
// answers a 500 page without parameters; the organization list is a
// plain array. Each is marked where it is coded.
//
// # Faults
//
// Options.Faults and Faults() drive the shared switchboard (latency, 500,
// 429 with Retry-After, dropped connections); its injected 500 is turned
// into the HTML page a Rails or proxy 500 carries. CutNextBodies cuts an
// answer mid-body after the write, and ExpireTokens kills every header
// set at once.
package oscar
