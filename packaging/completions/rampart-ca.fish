# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_rampart_ca_global_optspecs
    string join \n h/help V/version
end

function __fish_rampart_ca_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_rampart_ca_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_rampart_ca_using_subcommand
    set -l cmd (__fish_rampart_ca_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c rampart-ca -n "__fish_rampart_ca_needs_command" -s h -l help -d 'Print help'
complete -c rampart-ca -n "__fish_rampart_ca_needs_command" -s V -l version -d 'Print version'
complete -c rampart-ca -n "__fish_rampart_ca_needs_command" -f -a "init" -d 'Create a new CA in a directory: keys, TLS certificate, databases, config, policy, and a one-time invite for the bootstrap admin (printed once)'
complete -c rampart-ca -n "__fish_rampart_ca_needs_command" -f -a "serve" -d 'Serve the HTTPS API until SIGTERM or SIGINT'
complete -c rampart-ca -n "__fish_rampart_ca_needs_command" -f -a "check" -d 'Validate the config, keys, policy and TLS files without serving'
complete -c rampart-ca -n "__fish_rampart_ca_needs_command" -f -a "recover-admin" -d 'When no admin can log in: make a one-time invite for an admin, on the CA host (the daemon may keep running). Audited as `admin_recovery_invite`, severity high'
complete -c rampart-ca -n "__fish_rampart_ca_needs_command" -f -a "witness-restart" -d 'Begin a new audit witness from the audit database\'s newest checkpoint, on the CA host, when the old witness is missing or empty (`serve` refuses to start then). Compare the database with the SIEM\'s copy of the checkpoints first. Audited as `audit_witness_restarted`, severity high'
complete -c rampart-ca -n "__fish_rampart_ca_needs_command" -f -a "rotate-key" -d 'Replace the user or host CA key in three steps, on the CA host, each followed by a restart of the CA: `prepare` makes and publishes the next key, `activate` signs with it and keeps trusting the old one, `retire` drops the old one once what it signed has expired. Audited as `ca_key_rotated`, severity high. Key files (`K.next`, `K.previous`) or labels in a PKCS#11 token (`L.next`, `L.previous`)'
complete -c rampart-ca -n "__fish_rampart_ca_needs_command" -f -a "backup" -d 'Copy the CA\'s directory into a new directory while the daemon runs: consistent snapshots of both databases, the audit witness and the sealed recordings, checked (audit chain, witness, recording digests) before the directory gets its name. The key passphrase is never copied'
complete -c rampart-ca -n "__fish_rampart_ca_needs_command" -f -a "completions" -d 'Print a shell completion script (the Debian package installs the bash, zsh and fish ones)'
complete -c rampart-ca -n "__fish_rampart_ca_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c rampart-ca -n "__fish_rampart_ca_using_subcommand init" -l dir -d 'Directory to create' -r -F
complete -c rampart-ca -n "__fish_rampart_ca_using_subcommand init" -l listen -d 'API listen address' -r
complete -c rampart-ca -n "__fish_rampart_ca_using_subcommand init" -l admin -d 'Name of the bootstrap admin' -r
complete -c rampart-ca -n "__fish_rampart_ca_using_subcommand init" -l passphrase-file -d 'Read the key passphrase from this file (0600); the daemon reads it from there too. Without a passphrase option, init reads the systemd credential `ca-passphrase` from $CREDENTIALS_DIRECTORY, or else asks on the terminal, and the daemon reads that credential' -r -F
complete -c rampart-ca -n "__fish_rampart_ca_using_subcommand init" -l passphrase-env -d 'Read the key passphrase from this environment variable (init and daemon)' -r
complete -c rampart-ca -n "__fish_rampart_ca_using_subcommand init" -l tls-name -d 'Extra DNS name or IP address for the TLS certificate (repeatable)' -r
complete -c rampart-ca -n "__fish_rampart_ca_using_subcommand init" -l pkcs11-module -d 'Make the user and host CA keys inside a PKCS#11 token (an HSM, or SoftHSM2) with this module, instead of key files; they never leave it' -r -F
complete -c rampart-ca -n "__fish_rampart_ca_using_subcommand init" -l pkcs11-token -d 'The token\'s label (with --pkcs11-module)' -r
complete -c rampart-ca -n "__fish_rampart_ca_using_subcommand init" -l pkcs11-pin-file -d 'File holding the token\'s user PIN, mode 0600 (with --pkcs11-module); the daemon reads it from there too' -r -F
complete -c rampart-ca -n "__fish_rampart_ca_using_subcommand init" -l database -d 'Keep the CA\'s state in this empty PostgreSQL database (postgres://user@host:port/db) instead of DIR/ca.db' -r
complete -c rampart-ca -n "__fish_rampart_ca_using_subcommand init" -l database-password-file -d 'The PostgreSQL password, from this file (0600)' -r -F
complete -c rampart-ca -n "__fish_rampart_ca_using_subcommand init" -l database-tls-ca-file -d 'Connect to PostgreSQL over TLS, accepting only a server certificate that chains to the CA certificates in this PEM file and names the host' -r -F
complete -c rampart-ca -n "__fish_rampart_ca_using_subcommand init" -l insecure-passphrase-beside-keys -d 'INSECURE, for a throwaway CA only (`rampart dev`, tests): generate a passphrase and store it in DIR/secrets/passphrase, beside the keys it encrypts, so that a copy of DIR holds both. `rampart-ca check` warns'
complete -c rampart-ca -n "__fish_rampart_ca_using_subcommand init" -l json -d 'Print the outcome as one JSON object (for scripts)'
complete -c rampart-ca -n "__fish_rampart_ca_using_subcommand init" -s h -l help -d 'Print help'
complete -c rampart-ca -n "__fish_rampart_ca_using_subcommand serve" -l config -d 'Config file' -r -F
complete -c rampart-ca -n "__fish_rampart_ca_using_subcommand serve" -s h -l help -d 'Print help'
complete -c rampart-ca -n "__fish_rampart_ca_using_subcommand check" -l config -d 'Config file' -r -F
complete -c rampart-ca -n "__fish_rampart_ca_using_subcommand check" -s h -l help -d 'Print help'
complete -c rampart-ca -n "__fish_rampart_ca_using_subcommand recover-admin" -l config -d 'Config file' -r -F
complete -c rampart-ca -n "__fish_rampart_ca_using_subcommand recover-admin" -l ttl -d 'How long the invite is valid' -r
complete -c rampart-ca -n "__fish_rampart_ca_using_subcommand recover-admin" -s h -l help -d 'Print help'
complete -c rampart-ca -n "__fish_rampart_ca_using_subcommand witness-restart" -l config -d 'Config file' -r -F
complete -c rampart-ca -n "__fish_rampart_ca_using_subcommand witness-restart" -s h -l help -d 'Print help'
complete -c rampart-ca -n "__fish_rampart_ca_using_subcommand rotate-key" -l config -d 'Config file' -r -F
complete -c rampart-ca -n "__fish_rampart_ca_using_subcommand rotate-key" -l force -d 'With `retire`: drop the old key although certificates it signed are still valid (they stop working at once): for a compromised key'
complete -c rampart-ca -n "__fish_rampart_ca_using_subcommand rotate-key" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c rampart-ca -n "__fish_rampart_ca_using_subcommand backup" -l config -d 'Config file' -r -F
complete -c rampart-ca -n "__fish_rampart_ca_using_subcommand backup" -l out -d 'The directory to create (must not exist, nor lie inside the CA directory)' -r -F
complete -c rampart-ca -n "__fish_rampart_ca_using_subcommand backup" -s h -l help -d 'Print help'
complete -c rampart-ca -n "__fish_rampart_ca_using_subcommand completions" -s h -l help -d 'Print help'
complete -c rampart-ca -n "__fish_rampart_ca_using_subcommand help; and not __fish_seen_subcommand_from init serve check recover-admin witness-restart rotate-key backup completions help" -f -a "init" -d 'Create a new CA in a directory: keys, TLS certificate, databases, config, policy, and a one-time invite for the bootstrap admin (printed once)'
complete -c rampart-ca -n "__fish_rampart_ca_using_subcommand help; and not __fish_seen_subcommand_from init serve check recover-admin witness-restart rotate-key backup completions help" -f -a "serve" -d 'Serve the HTTPS API until SIGTERM or SIGINT'
complete -c rampart-ca -n "__fish_rampart_ca_using_subcommand help; and not __fish_seen_subcommand_from init serve check recover-admin witness-restart rotate-key backup completions help" -f -a "check" -d 'Validate the config, keys, policy and TLS files without serving'
complete -c rampart-ca -n "__fish_rampart_ca_using_subcommand help; and not __fish_seen_subcommand_from init serve check recover-admin witness-restart rotate-key backup completions help" -f -a "recover-admin" -d 'When no admin can log in: make a one-time invite for an admin, on the CA host (the daemon may keep running). Audited as `admin_recovery_invite`, severity high'
complete -c rampart-ca -n "__fish_rampart_ca_using_subcommand help; and not __fish_seen_subcommand_from init serve check recover-admin witness-restart rotate-key backup completions help" -f -a "witness-restart" -d 'Begin a new audit witness from the audit database\'s newest checkpoint, on the CA host, when the old witness is missing or empty (`serve` refuses to start then). Compare the database with the SIEM\'s copy of the checkpoints first. Audited as `audit_witness_restarted`, severity high'
complete -c rampart-ca -n "__fish_rampart_ca_using_subcommand help; and not __fish_seen_subcommand_from init serve check recover-admin witness-restart rotate-key backup completions help" -f -a "rotate-key" -d 'Replace the user or host CA key in three steps, on the CA host, each followed by a restart of the CA: `prepare` makes and publishes the next key, `activate` signs with it and keeps trusting the old one, `retire` drops the old one once what it signed has expired. Audited as `ca_key_rotated`, severity high. Key files (`K.next`, `K.previous`) or labels in a PKCS#11 token (`L.next`, `L.previous`)'
complete -c rampart-ca -n "__fish_rampart_ca_using_subcommand help; and not __fish_seen_subcommand_from init serve check recover-admin witness-restart rotate-key backup completions help" -f -a "backup" -d 'Copy the CA\'s directory into a new directory while the daemon runs: consistent snapshots of both databases, the audit witness and the sealed recordings, checked (audit chain, witness, recording digests) before the directory gets its name. The key passphrase is never copied'
complete -c rampart-ca -n "__fish_rampart_ca_using_subcommand help; and not __fish_seen_subcommand_from init serve check recover-admin witness-restart rotate-key backup completions help" -f -a "completions" -d 'Print a shell completion script (the Debian package installs the bash, zsh and fish ones)'
complete -c rampart-ca -n "__fish_rampart_ca_using_subcommand help; and not __fish_seen_subcommand_from init serve check recover-admin witness-restart rotate-key backup completions help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
