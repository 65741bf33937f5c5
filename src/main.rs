use kube::CustomResourceExt;

use atmos_auth_controller::api;

fn main() {
    println!(
        "{}",
        serde_json::to_string_pretty(&api::AuthProfile::crd()).unwrap_or_default()
    );
    println!(
        "{}",
        serde_json::to_string_pretty(&api::Identity::crd()).unwrap_or_default()
    );
}
