// Node-RED settings for bench/compare.sh: loopback only, no editor, the
// flow in flows.json. The ports come from the environment.
module.exports = {
    uiHost: "127.0.0.1",
    uiPort: parseInt(process.env.NR_HTTP_PORT || "1880", 10),
    httpAdminRoot: false,          // no editor, no admin API
    httpNodeRoot: "/",
    flowFile: "flows.json",
    flowFilePretty: true,
    credentialSecret: false,
    contextStorage: { default: { module: "memory" } },
    logging: { console: { level: "warn", metrics: false, audit: false } },
    externalModules: { autoInstall: false, palette: { allowInstall: false } },
    diagnostics: { enabled: false },
    runtimeState: { enabled: false },
    telemetry: { enabled: false },
};
