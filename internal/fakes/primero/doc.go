// Package primero is a faithful fake of the UNICEF Primero v2 API, served
// in process (httptest) by tests and by `engine demo` / `engine fake
// primero`. The contract it copies is /work/shared/reference/primero.md;
// its §11 checklist is what the tests cover.
//
// A fake that accepts anything proves nothing, so this one copies the
// silent behaviours as carefully as the loud ones: unknown filters and
// fields are dropped without a word, an illegal referral move answers 200
// and changes nothing, `per` is capped at 1000, datetime ranges compare at
// whole seconds, and only fields on the forms of the case's module can be
// written. The loud ones are the 401/403/404/409/422/429/503 answers of the
// real server, with its shapes.
//
// What it owns: the case store and its derived fields, authentication
// (JWT login, HTTP Basic, v2.11 cookie sessions, lockout, login throttle),
// referrals, transfers and assigns, users, agencies, locations, lookups,
// forms, webhooks with their async delivery, scripted faults, and test
// hooks (Go methods, and /__fake/* for out-of-process use). What it must
// not know: anything under casesync/engine or casesync/connectors. A fake
// that shared the engine's code would share its bugs.
//
// Use it as any handler:
//
//	s := primero.New(primero.Options{Cases: 500, Seed: 1})
//	srv := httptest.NewServer(s)
//	t.Cleanup(func() { srv.Close(); s.Close() })
//
// and assert on s.Cases(), s.Referrals(id), s.Counters(), s.Requests() and
// s.Deliveries(): the fake's own record, not what a client believes.
//
// # Configuration
//
// The forms and lookups are the default Primero configuration, embedded
// from config/ (origins in config/README.md), plus
// config/deployment_extensions.json: the Cambodia form (oscar_number,
// oscar_short_id, mosvy_number, oscar_status), the services_section fields
// the Cambodia and UNHCR flows write (service_subtype,
// referral_status_edf41f2, oscar_referral_id_a4ac8a5, unhcr_referral_status,
// progres_interventionnumber, service_request_*, …), extra lookup values,
// modules, roles, agencies, users and locations. Cambodia's service types,
// subtypes and response types come from config/cambodia_integration_value_maps.json.
// config/province_owner.csv is the province → manager table with the
// job's duplicated key fixed: Stung Treng (19) belongs to mgrstg.
//
// Default users, all with Options.Password: openfn_cp_user (integration,
// scope all), cp_admin (scope all, flags and attachments), the province
// managers mgr*, one agency-<org>-user per OSCaR organisation (receives
// referrals), primero_cp and unhcr_cw (caseworkers), unhcr_focal (receives
// UNHCR referrals), unicef_reader (agency scope), cp_restricted (cannot
// read the Cambodia form, so oscar_number filters are ignored for it),
// no_case_access (403 on cases), gbv_cw and the disabled retired_user.
//
// # Seed mix
//
// Options.Cases synthetic cases are a pure function of (Seed, index): the
// store keeps only the index and two timestamps of an untouched seeded
// case and rebuilds its document on demand, so 100,000 cases stay small.
// Every person is invented from syllable lists. created_at and
// last_updated_at fall in the 180 days before SeedBase, whatever the clock.
// The index modulo 20 picks the kind:
//
//	0-4   Cambodia, consent given, 1-2 services "referral_to_oscar" to
//	      agency-<org> (org from Options.Orgs, default cif, fco and mtp,
//	      the OSCaR fake's tenants) with a service_subtype from the value
//	      maps, each with an in_progress referral to agency-<org>-user
//	      (service_record_id = the service unique_id)                 25%
//	5     the same, but the referral was accepted: referral_status_edf41f2
//	      accepted_340953 and oscar_number/oscar_short_id set          5%
//	6     Cambodia referral_to_oscar service without consent, no
//	      referral                                                     5%
//	7     Cambodia with oscar_number and no referral service (the
//	      update_links branch); half have an OSCaR-provided service    5%
//	8     Cambodia referral_from_oscar service with
//	      oscar_referral_id_a4ac8a5, status accepted, rejected or none 5%
//	9-11  Cambodia, no services                                       15%
//	12-15 UNHCR (Gambella): a service implemented by "UNHCR" and an
//	      in_progress referral of it to unhcr_focal                   20%
//	16-17 UNHCR inbound from proGres (PING 1.1 shape): an external
//	      referral row with unhcr_referral_status pending, accepted or
//	      rejected and a 3-part progres_interventionnumber            10%
//	18-19 UNHCR, no services                                          10%
//
// Cambodia cases have NCDD village codes without the leading zero, the
// province being 1 + index mod 25 so every province appears, and are
// owned by that province's manager. UNHCR cases carry unhcr_individual_no
// (unique), unhcr_id_no, protection_concerns, language and a camp location.
// One case in 31 is closed; one in 97 is disabled (record_state false).
//
// Options.MoSVY seeds a Cambodian MoSVY Primero instead: the index modulo
// 12 picks among the Cambodia kinds 0-11 (no UNHCR case), and two cases in
// three carry one or two protection_concerns, one in ten a
// disability_type, both ids of Primero's default lookups.
//
// # Where the fake decides
//
// The reference leaves a few behaviours open; the fake picks one and the
// tests pin it: list ties break by record id in the direction of the
// order; a page below 1 or a negative per is the "broken SQL" answer (200,
// data [], total 0), as is an integer too large for bigint; a subform row
// key outside the form is a 422 (the subform schema is closed) while an
// unknown top-level key is dropped; only the Sync button's delivery and the
// mark_synced write-back change sync_status, so a case.update echo does not
// overwrite a receiver's answer; Duplicates counts 409s and creates that
// repeat an external identifier (unhcr_individual_no, unhcr_id_no,
// national_id_no, oscar_number) of another case.
package primero
