//! `make qualify`: the qualification scenario against the Chorus Pro named by
//! `CHORUS_API_URL` + `PISTE_TOKEN_URL` (the local emulator when unset). Everything is in
//! `gateway_tests::qualify`; this reads the environment and turns the outcome into the exit
//! status: 0 when every mandatory check passed, 1 when one did not, 2 when the run could
//! not start (configuration, a production host, the report not written).

use std::process::ExitCode;

use gateway_tests::qualify::{Settings, run};

#[tokio::main]
async fn main() -> ExitCode {
    let settings = match Settings::from_env() {
        Ok(settings) => settings,
        Err(problem) => {
            eprintln!("qualify: {problem}");
            return ExitCode::from(2);
        }
    };
    let mut stdout = std::io::stdout();
    match run(&settings, &mut stdout).await {
        Ok(outcome) => ExitCode::from(outcome.exit_code()),
        Err(problem) => {
            eprintln!("qualify: {problem}");
            ExitCode::from(2)
        }
    }
}
