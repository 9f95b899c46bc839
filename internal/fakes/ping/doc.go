// Package ping is a faithful fake of UNHCR's PING middleware (the API in
// front of proGres v4), for tests (httptest.NewServer(ping.New(opts))) and
// for `engine demo` / `engine fake ping`.
//
// It owns one in-memory proGres store (LP interventions, interoperability
// referrals, async transactions) and every PING behaviour casesync relies on,
// as written down in /work/shared/reference/ping.md: the Azure AD B2C
// password-grant token endpoint (TokenPath), the APIM gateway checks
// (subscription key, bearer token, their 401 bodies), the retrieve endpoint
// with its per-shipping-process row templates, {record_ids} filter and
// paging cookie, sync ingestion with per-item results, async ingestion with
// the Queued → Processing → Succeeded | Failed status check and its odd
// string encodings, and the 400 bodies for what PING cannot act on.
//
// It must not know the engine or the connectors, and imports neither: a fake
// that shares the engine's assumptions cannot catch the engine's bugs. Where
// ping.md marks a behaviour [inferred] or [contract], the fake implements the
// contract strictly (unknown parameters, unknown fields and bad option-set
// codes are refused) so a connector that leans on a guess fails here first.
//
// Deliberate choices where ping.md leaves room:
//   - SHP-2795 lists every referral, synced ones included (ping.md §10, §12);
//     Options.HideSyncedDecisions drops synced ones instead.
//   - Paging is keyset: the cookie remembers the last row handed out, so
//     acknowledging interventions while walking SHP-2747 skips nothing.
//   - Re-sending the same values succeeds and counts as a "noop" write;
//     an attachment comment that is already on the record is still added
//     and counted in Counters().Duplicates, as is a second SHP-2731 referral
//     for the same Primero case and service.
//   - Async items are validated and written when their transaction finishes,
//     not when they are sent.
//
// # Seed data
//
// Everything is derived from Options.Seed with math/rand/v2 PCG streams, and
// every date is relative to 2026-05-01 (never the clock), so the same
// Options give byte-identical rows. People are invented from syllables; ids
// use the fake office code 900, phone numbers the unassigned +999 code and
// e-mail addresses example.org. Generation is linear, so 10,000+ records
// are cheap.
//
// Interventions (SHP-2747 / SHP-2358), indexes 0-4 fixed, the rest drawn:
//   - 0: sex 125080000, 2 languages x 2 specific needs = 4 joined detail rows.
//   - 1: sex 125080001, intervention type "Legal Assistance", which is not in
//     progres_to_primero_service_type.csv (the allow-list miss).
//   - 2: sex 125080002, no date of birth.
//   - 3: sex 125080003, languages "Tigrinya" (not in
//     progres_language_name_to_primero_language.csv) and one known language.
//   - 4: no languages, no specific needs (one detail row), transfer status
//     125080001 Delivery Fail: listed again after a failed delivery.
//   - 5+: a type drawn from the five allow-listed ones, sex mostly 125080000
//     or 125080001 (1 in 20 each other and unknown), 0-2 languages from the
//     17 table names (quirks like "Dinka, Southeastern;" included), 0-2
//     specific needs from nine (category, subcategory) pairs whose category
//     GUIDs are those of the spneed table, start dates within the year
//     before the base date, children aged 1-17, optional middle name,
//     nickname and phone, 3-4 location levels, HTML in some descriptions.
//
// Decisions (SHP-2795 / SHP-2796), indexes 0-3 fixed, the rest drawn:
//   - 0: accepted, status 125080001, progres_reviewdecision 125080000.
//   - 1: rejected, status 125080002, review decision 125080001, with a
//     rejection reason name and comment.
//   - 2: status 125080009, a code no table knows; no review decision.
//   - 3: status 125080000 (new, awaiting decision).
//   - 4+: accepted or rejected at even odds.
//
// Each decision carries the 24 SHP-2731 fields a Flow 2.1 referral would
// have had (progres_offlineid = the Primero case_id, progres_orgreferralid =
// the Primero service unique_id, a requested-service GUID from the service
// table), so Flow 2.2 can be exercised end to end; Decisions() lists them.
package ping
