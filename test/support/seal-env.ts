// Runs in every test worker before its test file: the developer's skein,
// provider, goose and tmux settings are removed from the worker's own
// environment, so no test (nor code it runs in process, nor a child it spawns
// with process.env) sees them. SKEIN_TEST_* configure the tests themselves.
import { scrubCallerSettings } from "@skein/testkit";

scrubCallerSettings();
