"""The texts of every message, by key, in Dutch and English (`messages.text` fills in the
`{name}` parameters and picks the language). A new refusal gets its key here.
"""

from __future__ import annotations

MESSAGES: dict[str, dict[str, str]] = {
    # -- the request itself -------------------------------------------------------------
    "http.bad_request": {
        "nl": "Het verzoek klopt niet en is niet verwerkt.",
        "en": "The request is not right and was not processed.",
    },
    "http.not_found": {
        "nl": "Dit adres bestaat niet. Controleer de link.",
        "en": "There is nothing at this address. Check the link.",
    },
    "http.method": {
        "nl": "Deze handeling kan niet op dit adres.",
        "en": "This method is not allowed at this address.",
    },
    "http.too_large": {
        "nl": "Het verzoek is te groot: stuur het in delen.",
        "en": "The request is too large: send it in parts.",
    },
    "http.internal": {
        "nl": "Er ging iets mis op de server; er is niets verloren gegaan. Probeer het opnieuw en meld"
        " het aan het pijnteam als het blijft gebeuren.",
        "en": "Something went wrong on the server; nothing was lost. Try again, and tell the pain team"
        " if it keeps happening.",
    },
    "http.unavailable": {
        "nl": "De database kan nu niet opslaan; er is niets opgeslagen. Probeer het later opnieuw.",
        "en": "The database cannot save now; nothing was saved. Try again later.",
    },
    "body.not_utf8": {
        "nl": "De gegevens zijn geen geldige UTF-8-tekst.",
        "en": "The request body is not valid UTF-8 text.",
    },
    "body.too_deep": {
        "nl": "De JSON is te diep genest; een antwoord heeft maar een paar niveaus.",
        "en": "The JSON is nested too deeply; a response has only a few levels.",
    },
    "body.number_range": {
        "nl": "Een getal in de gegevens is te groot of te klein om te lezen (bijv. 1e309).",
        "en": "A number in the request body is too large or too small to read (e.g. 1e309).",
    },
    "body.malformed": {
        "nl": "De gegevens zijn geen geldige JSON ({why}).",
        "en": "The request body is not valid JSON ({why}).",
    },
    "body.invalid": {
        "nl": "{field}: {error}",
        "en": "{field}: {error}",
    },
    "body.invalid_more": {
        "nl": "{field}: {error} (en nog {more} andere problemen)",
        "en": "{field}: {error} (and {more} more problems)",
    },
    # -- a field of the body (msgspec's checks, in words) ---------------------------------
    "field.type": {"nl": "moet {expected} zijn, niet {got}", "en": "must be {expected}, not {got}"},
    "field.missing": {"nl": "ontbreekt", "en": "is missing"},
    "field.unknown": {"nl": "is onbekend: laat dit veld weg", "en": "is unknown: leave this field out"},
    "field.bound": {"nl": "moet {bound} zijn", "en": "must be {bound}"},
    "field.invalid": {"nl": "is ongeldig ({why})", "en": "is not valid ({why})"},
    # type names used in field.type
    "type.int": {"nl": "een geheel getal", "en": "a whole number"},
    "type.float": {"nl": "een getal", "en": "a number"},
    "type.str": {"nl": "tekst", "en": "text"},
    "type.bool": {"nl": "waar of onwaar", "en": "true or false"},
    "type.null": {"nl": "leeg (null)", "en": "empty (null)"},
    "type.object": {"nl": "een object", "en": "an object"},
    "type.array": {"nl": "een lijst", "en": "a list"},
    # -- signing in a device --------------------------------------------------------------
    "auth.no_token": {
        "nl": "Dit apparaat is niet aangemeld: stuur 'Authorization: Bearer <apparaatsleutel>'.",
        "en": "This device is not signed in: send 'Authorization: Bearer <device token>'.",
    },
    "auth.discharged": {
        "nl": "Het pijnteam heeft uw dagboek beëindigd. U hoeft niets meer in te vullen.",
        "en": "The pain team has ended your diary. There is nothing more to fill in.",
    },
    "auth.signed_out": {
        "nl": "Dit apparaat is niet meer aangemeld. Meld u opnieuw aan met een nieuwe code van het pijnteam.",
        "en": "This device is no longer signed in. Join again with a new code from the pain team.",
    },
    "enrol.code_format": {
        "nl": "Een aanmeldcode heeft {length} letters en cijfers, zoals ABCD-EFGH.",
        "en": "An enrolment code has {length} letters and digits, like ABCD-EFGH.",
    },
    "enrol.code_unknown": {
        "nl": "Deze code is onbekend of al gebruikt. Vraag het pijnteam om een nieuwe code.",
        "en": "This code is unknown or was already used. Ask the pain team for a new code.",
    },
    "enrol.code_expired": {
        "nl": "Deze code is verlopen. Vraag het pijnteam om een nieuwe code.",
        "en": "This code has expired. Ask the pain team for a new code.",
    },
    "enrol.throttled": {
        "nl": "Te veel verkeerde codes vanaf dit adres. Probeer het na {until} UTC opnieuw, of vraag het"
        " pijnteam.",
        "en": "Too many wrong codes from this address. Try again after {until} UTC, or ask the pain team.",
    },
    # -- push subscriptions (backend/push/endpoints.py, subscriptions.py) --------------------------
    "push.endpoint_missing": {"nl": "endpoint ontbreekt", "en": "endpoint is missing"},
    "push.endpoint_invalid": {"nl": "endpoint is geen geldig adres", "en": "endpoint is not a valid URL"},
    "push.endpoint_https": {
        "nl": "endpoint moet een https-adres zijn",
        "en": "endpoint must be an https URL",
    },
    "push.endpoint_not_push": {
        "nl": "endpoint is geen adres van een pushdienst",
        "en": "endpoint is not a push service URL",
    },
    "push.endpoint_private": {
        "nl": "endpoint moet een openbaar adres zijn, geen adres in een eigen netwerk",
        "en": "endpoint must be a public address, not one inside a private network",
    },
    "push.endpoint_taken": {
        "nl": "Deze pushmeldingen horen al bij een ander account; er is niets veranderd.",
        "en": "These push messages already belong to another account; nothing was changed.",
    },
    # -- clinicians signing in and their accounts (backend/web/clinic.py, backend/platform/accounts.py) --
    "login.wrong": {
        "nl": "Het e-mailadres of het wachtwoord klopt niet.",
        "en": "The e-mail address or the password is not right.",
    },
    "login.throttled": {
        "nl": "Te veel mislukte pogingen om in te loggen. Wacht {wait} en probeer het dan opnieuw. Wachtwoord"
        " vergeten? Een beheerder kan onder Gebruikers een nieuw wachtwoord instellen; daarmee kunt u"
        " meteen weer inloggen.",
        "en": "Too many failed sign-ins. Wait {wait}, then try again. Forgot the password? An"
        " administrator can set a new one under Users; with it you can sign in at once.",
    },
    "login.busy": {
        "nl": "Er loggen nu veel mensen tegelijk in. Probeer het over een paar seconden opnieuw.",
        "en": "Many people are signing in right now. Try again in a few seconds.",
    },
    "login.form_expired": {
        "nl": "Het formulier was verlopen. Meld u opnieuw aan.",
        "en": "The form had expired. Please sign in again.",
    },
    "account.unknown": {"nl": "Er is geen account voor {email}.", "en": "There is no account for {email}."},
    "account.last_admin": {
        "nl": "{email} is de laatste actieve beheerder: maak eerst een andere beheerder aan.",
        "en": "{email} is the last active administrator: make another administrator first.",
    },
    "account.role": {
        "nl": "De rol moet clinician (zorgverlener) of admin (beheerder) zijn.",
        "en": "The role must be clinician or admin.",
    },
    "account.current_wrong": {
        "nl": "Het huidige wachtwoord klopt niet.",
        "en": "The current password is not right.",
    },
    "account.email": {
        "nl": "{email} is geen e-mailadres.",
        "en": "{email} is not an e-mail address.",
    },
    "account.name_required": {"nl": "Een naam is nodig.", "en": "A name is required."},
    "account.exists": {
        "nl": "Er is al een account voor {email}.",
        "en": "There is already an account for {email}.",
    },
    "account.changed": {
        "nl": "{email}: {what}.",
        "en": "{email}: {what}.",
    },
    "account.password_short": {
        "nl": "Het wachtwoord moet minstens {min} tekens hebben.",
        "en": "The password must have at least {min} characters.",
    },
    "account.password_common": {
        "nl": "Dit wachtwoord staat op een lijst van veelgebruikte wachtwoorden: kies een ander.",
        "en": "This password is on a list of common passwords: choose another.",
    },
    "account.password_like_name": {
        "nl": "Het wachtwoord moet anders zijn dan het e-mailadres en de naam.",
        "en": "The password must differ from the e-mail address and the name.",
    },
    "account.passwords_differ": {
        "nl": "De twee nieuwe wachtwoorden zijn niet gelijk.",
        "en": "The two new passwords differ.",
    },
    "account.same_password": {
        "nl": "Het nieuwe wachtwoord moet anders zijn dan het huidige.",
        "en": "The new password must differ from the current one.",
    },
    # -- patient settings -----------------------------------------------------------------
    "settings.language": {"nl": "taal moet nl of en zijn", "en": "language must be nl or en"},
    "settings.timezone": {
        "nl": "tijdzone {value} is geen bekende tijdzone (bijv. Europe/Amsterdam)",
        "en": "timezone {value} is not a known time zone (e.g. Europe/Amsterdam)",
    },
    "settings.reminder_time": {
        "nl": "reminder_time {value} moet een tijd als UU:MM zijn, bijv. 20:00 (HH:MM)",
        "en": "reminder_time {value} must be a time as HH:MM, e.g. 20:00",
    },
    "name.required": {
        "nl": "Een naam of pseudoniem is nodig.",
        "en": "A display name or pseudonym is required.",
    },
    "name.too_long": {
        "nl": "De naam is langer dan {max} tekens.",
        "en": "The display name is longer than {max} characters.",
    },
    "name.control": {
        "nl": "De naam bevat onzichtbare of stuurtekens: typ hem opnieuw.",
        "en": "The display name holds invisible or control characters: type it again.",
    },
    "name.bsn": {
        "nl": "De naam lijkt een nummer zoals een BSN te bevatten: gebruik een naam of pseudoniem.",
        "en": "The display name looks like it holds a number such as a BSN: use a name or pseudonym.",
    },
    "pathway.unknown": {
        "nl": "Zorgpad {value} is onbekend; bekende zorgpaden: {known}",
        "en": "pathway {value} is unknown; known pathways: {known}",
    },
    "anchor.format": {
        "nl": "De startdatum moet een datum als JJJJ-MM-DD zijn, bijv. 2026-03-29.",
        "en": "The start date must be a date as YYYY-MM-DD, e.g. 2026-03-29.",
    },
    "anchor.range": {
        "nl": "De startdatum {value} valt buiten {first} tot en met {last}.",
        "en": "The start date {value} lies outside {first} to {last}.",
    },
    # -- responses ------------------------------------------------------------------------
    "response.conflict": {
        "nl": "Antwoord {id} is al opgeslagen met andere inhoud. Een wijziging moet als nieuw antwoord"
        " met een nieuw id worden gestuurd.",
        "en": "Response {id} was already stored with other content. An edit must be sent as a new"
        " response with a new id.",
    },
    "response.conflict_short": {
        "nl": "al opgeslagen met andere inhoud; stuur een wijziging met een nieuw id",
        "en": "already stored with other content; send an edit with a new id",
    },
    "response.too_many_edits": {
        "nl": "De vragenlijst van {day} is het afgelopen uur al {max} keer gestuurd; meer wijzigingen"
        " van die dag neemt de server nu niet aan. Het antwoord blijft op het toestel en gaat na"
        " {until} UTC vanzelf opnieuw.",
        "en": "The questionnaire of {day} was sent {max} times in the last hour; the server takes no"
        " more changes of that day now. The answer stays on the device and is sent again by itself"
        " after {until} UTC.",
    },
    "response.batch_too_big": {
        "nl": "Een batch bevat hoogstens {max} antwoorden; deze heeft er {count}. Stuur hem in delen.",
        "en": "A batch holds at most {max} responses; this one has {count}. Send it in parts.",
    },
    "response.item_broken": {
        "nl": "dit antwoord kon niet worden verwerkt; het is niet opgeslagen",
        "en": "this response could not be processed; it was not stored",
    },
    "response.since": {
        "nl": "since moet een datum en tijd met tijdverschil zijn, bijv. 2026-03-01T00:00:00Z",
        "en": "since must be a date and time with offset, e.g. 2026-03-01T00:00:00Z",
    },
    "response.id": {
        "nl": "moet een UUID zijn, zoals 3f1c2a9e-8b7d-4c55-9a10-2f6b7c8d9e01",
        "en": "must be a UUID such as 3f1c2a9e-8b7d-4c55-9a10-2f6b7c8d9e01",
    },
    "response.task_id": {
        "nl": "moet een taak-id uit GET /api/v1/tasks zijn, of null",
        "en": "must be a task id from GET /api/v1/tasks, or null",
    },
    "response.questionnaire": {
        "nl": "onbekende vragenlijst {id}",
        "en": "unknown questionnaire {id}",
    },
    "response.version": {
        "nl": "{id} heeft geen versie {version}",
        "en": "{id} has no version {version}",
    },
    "pause.until": {
        "nl": "moet een datum zijn als JJJJ-MM-DD, van vandaag tot en met {last}"
        " (een pauze duurt hoogstens {days} dagen)",
        "en": "must be a date as YYYY-MM-DD, from today up to {last} (a pause lasts at most {days} days)",
    },
    "receipt.tag": {
        "nl": "moet de tag van een herinnering voor u zijn, zoals task-12",
        "en": "must be the tag of a reminder for you, such as task-12",
    },
    "snooze.hours": {
        "nl": "kies 1 of 3 uur",
        "en": "choose 1 or 3 hours",
    },
    "snooze.nothing": {
        "nl": "Deze vragenlijst staat niet (meer) open, of sluit voordat de herinnering zou komen.",
        "en": "This questionnaire is not open (any more), or closes before the reminder would come.",
    },
    "response.without_text": {
        "nl": "{id} wacht op de gelicentieerde tekst van de kliniek en kan nog niet worden ingevuld",
        "en": "{id} waits for the clinic's licensed text and cannot be answered yet",
    },
    "response.too_late": {
        "nl": "{day} ligt te ver van de dag waarop het is ingevuld ({written}); een dagboekdag mag tot"
        " {days} dagen later worden ingevuld",
        "en": "{day} is too far from the day it was written ({written}); a diary day may be filled in"
        " up to {days} days late",
    },
    # -- dates (contract v2, one rule) -----------------------------------------------------
    "date.format": {
        "nl": "moet een datum als JJJJ-MM-DD zijn, bijv. 2026-03-29",
        "en": "must be a date as YYYY-MM-DD, e.g. 2026-03-29",
    },
    "date.range": {
        "nl": "{value} valt buiten {first} tot en met {last}",
        "en": "{value} lies outside {first} to {last}",
    },
    "datetime.format": {
        "nl": "moet een datum en tijd met tijdverschil zijn (RFC 3339), bijv. 2026-03-29T20:15:00+02:00",
        "en": "must be a date and time with offset (RFC 3339), e.g. 2026-03-29T20:15:00+02:00",
    },
    "datetime.range": {
        "nl": "{value} valt buiten {first} tot en met {last}: controleer de datum en tijd van de telefoon",
        "en": "{value} lies outside {first} to {last}: check the phone's date and time",
    },
    # -- FHIR read API ----------------------------------------------------------------------
    "fhir.questionnaire_not_found": {
        "nl": "Vragenlijst {id!r} bestaat niet op deze server (zie GET /fhir/Questionnaire).",
        "en": "Questionnaire {id!r} does not exist on this server (see GET /fhir/Questionnaire).",
    },
    # -- clinic forms ---------------------------------------------------------------------
    "clinic.colleague": {"nl": "Kies een collega uit de lijst.", "en": "Choose a colleague from the list."},
    "clinic.note_empty": {"nl": "Een notitie heeft tekst nodig.", "en": "A note needs some text."},
    "clinic.note_too_long": {
        "nl": "De notitie is {length} tekens; er passen er {max}. Er is niets opgeslagen:"
        " ga terug en maak hem korter.",
        "en": "The note is {length} characters; {max} fit. Nothing was saved: go back and shorten it.",
    },
    "clinic.outcome": {
        "nl": "Kies wat er gedaan is (de uitkomst).",
        "en": "Choose what was done (the outcome).",
    },
    "clinic.search_too_long": {
        "nl": "De zoekterm is langer dan {max} tekens: zoek op een deel van de naam of het patiëntnummer.",
        "en": "The search is longer than {max} characters: search for part of the name or the patient id.",
    },
    "clinic.sign_in": {
        "nl": "Meld u aan om de kliniekpagina's te zien.",
        "en": "Sign in to see the clinic pages.",
    },
    "clinic.admin_only": {
        "nl": "Alleen een beheerder mag dit doen.",
        "en": "Only an administrator may do this.",
    },
    "clinic.form_expired": {
        "nl": "Dit formulier is verlopen of kwam niet van deze site. Laad de pagina opnieuw en probeer"
        " het nog eens.",
        "en": "This form has expired or did not come from this site. Reload the page and try again.",
    },
    "clinic.csv_dialect": {
        "nl": "Kies een CSV: dialect=nl (Nederlandse Excel) of dialect=standard.",
        "en": "Choose a CSV: dialect=nl (Dutch Excel) or dialect=standard.",
    },
    "clinic.export_nothing": {
        "nl": "Er is (in deze periode) nog niets om te downloaden: er zijn nog geen antwoorden.",
        "en": "There is nothing to download (in this period) yet: there are no answers.",
    },
    "clinic.no_patient": {"nl": "Deze patiënt bestaat niet.", "en": "There is no such patient."},
    "clinic.no_alert": {"nl": "Deze melding bestaat niet.", "en": "There is no such alert."},
    "clinic.no_pathway": {"nl": "Dit zorgpad bestaat niet.", "en": "There is no such pathway."},
    "clinic.no_account": {"nl": "Dit account bestaat niet.", "en": "There is no such account."},
    "clinic.session_expired": {
        "nl": "Uw sessie was verlopen. Log opnieuw in: wat u had ingevuld staat daarna weer klaar.",
        "en": "Your session had expired. Sign in again: what you had typed will be waiting for you.",
    },
    "clinic.session_restored": {
        "nl": "Uw sessie was verlopen, dus wat u deed is niet uitgevoerd. Wat u had ingevuld staat weer in"
        " het formulier: controleer het en verstuur het opnieuw.",
        "en": "Your session had expired, so what you did was not carried out. What you had typed is back in"
        " the form: check it and send it again.",
    },
    "clinic.enrol_same_name": {
        "nl": "Er is al een patiënt '{name}' (aangemeld {since}). Toch een nieuwe patiënt aanmelden?"
        " Vink dan hieronder aan dat het een andere patiënt is.",
        "en": "There is already a patient '{name}' (enrolled {since}). Enrol a new patient anyway?"
        " Then tick below that this is a different patient.",
    },
    "clinic.enrol_done": {
        "nl": "Deze aanmelding is al verwerkt; hieronder staat de patiënt die toen is aangemeld.",
        "en": "This enrolment was already processed; below is the patient enrolled then.",
    },
    "clinic.discharged": {
        "nl": "{name} is afgemeld: geen taken, herinneringen of stiltemeldingen meer. De gegevens"
        " blijven bewaard; 'Weer volgen' draait dit terug.",
        "en": "{name} was discharged: no more tasks, reminders or silence alerts. The data is kept;"
        " 'Resume' undoes this.",
    },
    "clinic.resumed": {
        "nl": "{name} wordt weer gevolgd; het schema loopt vanaf vandaag.",
        "en": "{name} is followed again; the schedule runs from today.",
    },
    "clinic.renamed": {"nl": "De naam is nu {name}.", "en": "The name is now {name}."},
    "clinic.saved": {"nl": "Opgeslagen.", "en": "Saved."},
    "discharge.reason_too_long": {
        "nl": "De reden is langer dan {max} tekens.",
        "en": "The reason is longer than {max} characters.",
    },
    "push.not_set_up": {
        "nl": "Pushberichten zijn op deze server niet ingesteld.",
        "en": "Push messages are not set up on this server.",
    },
    "push.subscription_invalid": {
        "nl": "De pushinschrijving van deze browser klopt niet; er is niets opgeslagen.",
        "en": "This browser's push subscription is not valid; nothing was saved.",
    },
    # -- the audit log's actions, as the admin page shows them (backend/platform/audit.py) --
    "audit.object.settings": {"nl": "instellingen", "en": "settings"},
    "audit.object.audit_log": {"nl": "inzage-logboek", "en": "audit log"},
    "audit.object.enrolment_code": {"nl": "aanmeldcode", "en": "enrolment code"},
    # -- periods of reports and exports (clinic, CLI) ------------------------------------
    "period.date": {
        "nl": "{field} {value} is geen datum als JJJJ-MM-DD tussen 1900 en 2999",
        "en": "{field} {value} is not a date as YYYY-MM-DD between 1900 and 2999",
    },
    "period.reversed": {
        "nl": "de periode is omgekeerd: van {start} ligt na tot {end}",
        "en": "the date range is the wrong way round: from {start} is after to {end}",
    },
    "period.too_long": {
        "nl": "de periode {start} tot {end} is langer dan {years} jaar: kies een kortere",
        "en": "the period {start} to {end} is longer than {years} years: choose a shorter one",
    },
    # -- answers --------------------------------------------------------------------------
    "answer.unknown_item": {
        "nl": "{questionnaire} heeft geen vraag {item}",
        "en": "{questionnaire} has no item {item}",
    },
    "answer.too_many": {
        "nl": "{count} antwoorden op een vragenlijst van {items} vragen",
        "en": "{count} answers to a questionnaire of {items} items",
    },
    "answer.required": {"nl": "een antwoord is nodig", "en": "an answer is required"},
    "answer.text": {"nl": "moet tekst zijn", "en": "must be text"},
    "answer.max_length": {"nl": "mag hoogstens {max} tekens zijn", "en": "must be at most {max} characters"},
    "answer.number": {"nl": "moet een getal zijn", "en": "must be a number"},
    "answer.finite": {"nl": "moet een eindig getal zijn", "en": "must be a finite number"},
    "answer.one_of": {"nl": "moet een van {allowed} zijn", "en": "must be one of {allowed}"},
    "answer.whole": {"nl": "moet een geheel getal zijn", "en": "must be a whole number"},
    "answer.between": {"nl": "moet tussen {lo} en {hi} liggen", "en": "must be between {lo} and {hi}"},
    "answer.step": {"nl": "moet in stappen van {step}", "en": "must be in steps of {step}"},
    "answer.too_few_scored": {
        "nl": "de {name}-score kan alleen worden berekend als minstens {needed} van de {total}"
        " onderdelen beantwoord zijn (nu {answered}): beantwoord er nog {more}",
        "en": "the {name} score needs at least {needed} of the {total} sections answered"
        " ({answered} now): answer {more} more",
    },
    # -- per-patient detection overrides (backend/alerts/overrides.py) ----------------------------
    "override.no_patient": {"nl": "geen patiënt met id {id}", "en": "no patient with id {id}"},
    "override.syntax": {
        "nl": "--set {item}: schrijf SLEUTEL=WAARDE, bijv. noise_z=2",
        "en": "--set {item}: write KEY=VALUE, e.g. noise_z=2",
    },
    "override.unknown_key": {
        "nl": "onbekende instelling '{key}'; bekend zijn: {known}",
        "en": "unknown setting '{key}'; known are: {known}",
    },
    "override.whole": {
        "nl": "'{key}': '{value}' is geen geldige waarde (een heel getal van {low} tot en met {high})",
        "en": "'{key}': '{value}' is not a valid value (a whole number from {low} to {high})",
    },
    "override.number": {
        "nl": "'{key}': '{value}' is geen geldige waarde (een getal van {low} tot en met {high})",
        "en": "'{key}': '{value}' is not a valid value (a number from {low} to {high})",
    },
    "override.pain": {
        "nl": "'{key}': '{value}' is geen geldige waarde (een pijnscore van {low} tot en met {high})",
        "en": "'{key}': '{value}' is not a valid value (a pain score from {low} to {high})",
    },
    "override.until_required": {
        "nl": "'{key}' geldt voor een beperkte tijd: geef een einddatum (uiterlijk {days} dagen vooruit)",
        "en": "'{key}' holds for a limited time: give an end date (at most {days} days ahead)",
    },
    "override.until_format": {
        "nl": "'{key}': einddatum '{value}' is geen datum (JJJJ-MM-DD)",
        "en": "'{key}': end date '{value}' is not a date (YYYY-MM-DD)",
    },
    "override.until_past": {
        "nl": "'{key}': einddatum {value} ligt in het verleden",
        "en": "'{key}': end date {value} lies in the past",
    },
    "override.until_far": {
        "nl": "'{key}': einddatum {value} ligt meer dan {days} dagen vooruit (uiterlijk {last})",
        "en": "'{key}': end date {value} lies more than {days} days ahead (at the latest {last})",
    },
    "override.combination": {
        "nl": "'{key}': samen met de andere instellingen ongeldig ({why})",
        "en": "'{key}': invalid together with the other settings ({why})",
    },
    # -- the clinic's forms: an expected level saved on an alert, the consult's period ------------
    "clinic.expected_saved": {
        "nl": "Verwacht pijnniveau {value} tot en met {until} opgeslagen.",
        "en": "Expected pain level {value} through {until} saved.",
    },
    "consult.period_date": {
        "nl": "'{field}': '{value}' is geen datum als JJJJ-MM-DD tussen 1900 en 2999",
        "en": "'{field}': '{value}' is not a date as YYYY-MM-DD between 1900 and 2999",
    },
    "consult.period_reversed": {
        "nl": "De periode is omgekeerd: 'van' ({start}) ligt na 'tot en met' ({end}).",
        "en": "The period is the wrong way round: 'from' ({start}) is after 'to' ({end}).",
    },
    "consult.period_future": {
        "nl": "'van' ({start}) ligt na vandaag ({today}): er is nog niets te tonen.",
        "en": "'from' ({start}) is after today ({today}): there is nothing to show yet.",
    },
    "consult.period_too_long": {
        "nl": "De periode {start} tot en met {end} is langer dan {years} jaar: kies een kortere.",
        "en": "The period {start} to {end} is longer than {years} years: choose a shorter one.",
    },
}
