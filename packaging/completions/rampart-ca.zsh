#compdef rampart-ca

autoload -U is-at-least

_rampart-ca() {
    typeset -A opt_args
    typeset -a _arguments_options
    local ret=1

    if is-at-least 5.2; then
        _arguments_options=(-s -S -C)
    else
        _arguments_options=(-s -C)
    fi

    local context curcontext="$curcontext" state line
    _arguments "${_arguments_options[@]}" : \
'-h[Print help]' \
'--help[Print help]' \
'-V[Print version]' \
'--version[Print version]' \
":: :_rampart-ca_commands" \
"*::: :->rampart-ca" \
&& ret=0
    case $state in
    (rampart-ca)
        words=($line[1] "${words[@]}")
        (( CURRENT += 1 ))
        curcontext="${curcontext%:*:*}:rampart-ca-command-$line[1]:"
        case $line[1] in
            (init)
_arguments "${_arguments_options[@]}" : \
'--dir=[Directory to create]:DIR:_files' \
'--listen=[API listen address]:LISTEN:_default' \
'--admin=[Name of the bootstrap admin]:ADMIN:_default' \
'--passphrase-file=[Read the key passphrase from this file (0600); the daemon reads it from there too. Without a passphrase option, init reads the systemd credential \`ca-passphrase\` from \$CREDENTIALS_DIRECTORY, or else asks on the terminal, and the daemon reads that credential]:PASSPHRASE_FILE:_files' \
'--passphrase-env=[Read the key passphrase from this environment variable (init and daemon)]:PASSPHRASE_ENV:_default' \
'*--tls-name=[Extra DNS name or IP address for the TLS certificate (repeatable)]:TLS_NAMES:_default' \
'--pkcs11-module=[Make the user and host CA keys inside a PKCS#11 token (an HSM, or SoftHSM2) with this module, instead of key files; they never leave it]:PKCS11_MODULE:_files' \
'--pkcs11-token=[The token'\''s label (with --pkcs11-module)]:PKCS11_TOKEN:_default' \
'--pkcs11-pin-file=[File holding the token'\''s user PIN, mode 0600 (with --pkcs11-module); the daemon reads it from there too]:PKCS11_PIN_FILE:_files' \
'--database=[Keep the CA'\''s state in this empty PostgreSQL database (postgres\://user@host\:port/db) instead of DIR/ca.db]:URL:_default' \
'--database-password-file=[The PostgreSQL password, from this file (0600)]:FILE:_files' \
'--database-tls-ca-file=[Connect to PostgreSQL over TLS, accepting only a server certificate that chains to the CA certificates in this PEM file and names the host]:FILE:_files' \
'--insecure-passphrase-beside-keys[INSECURE, for a throwaway CA only (\`rampart dev\`, tests)\: generate a passphrase and store it in DIR/secrets/passphrase, beside the keys it encrypts, so that a copy of DIR holds both. \`rampart-ca check\` warns]' \
'--json[Print the outcome as one JSON object (for scripts)]' \
'-h[Print help]' \
'--help[Print help]' \
&& ret=0
;;
(serve)
_arguments "${_arguments_options[@]}" : \
'--config=[Config file]:CONFIG:_files' \
'-h[Print help]' \
'--help[Print help]' \
&& ret=0
;;
(check)
_arguments "${_arguments_options[@]}" : \
'--config=[Config file]:CONFIG:_files' \
'-h[Print help]' \
'--help[Print help]' \
&& ret=0
;;
(recover-admin)
_arguments "${_arguments_options[@]}" : \
'--config=[Config file]:CONFIG:_files' \
'--ttl=[How long the invite is valid]:DURATION:_default' \
'-h[Print help]' \
'--help[Print help]' \
':user -- The admin to invite:_default' \
&& ret=0
;;
(witness-restart)
_arguments "${_arguments_options[@]}" : \
'--config=[Config file]:CONFIG:_files' \
'-h[Print help]' \
'--help[Print help]' \
&& ret=0
;;
(rotate-key)
_arguments "${_arguments_options[@]}" : \
'--config=[Config file]:CONFIG:_files' \
'--force[With \`retire\`\: drop the old key although certificates it signed are still valid (they stop working at once)\: for a compromised key]' \
'-h[Print help (see more with '\''--help'\'')]' \
'--help[Print help (see more with '\''--help'\'')]' \
':ca -- Which key:((user\:"The user CA key (user certificates, KRL signatures)"
host\:"The host CA key (host certificates)"))' \
':step -- Which step:((prepare\:"Make the next key; the CA publishes it beside the signing one"
activate\:"Sign with the next key; keep trusting the one it replaces"
retire\:"Stop trusting the replaced key"))' \
&& ret=0
;;
(backup)
_arguments "${_arguments_options[@]}" : \
'--config=[Config file]:CONFIG:_files' \
'--out=[The directory to create (must not exist, nor lie inside the CA directory)]:DIR:_files' \
'-h[Print help]' \
'--help[Print help]' \
&& ret=0
;;
(completions)
_arguments "${_arguments_options[@]}" : \
'-h[Print help]' \
'--help[Print help]' \
':shell -- The shell:(bash elvish fish powershell zsh)' \
&& ret=0
;;
(help)
_arguments "${_arguments_options[@]}" : \
":: :_rampart-ca__subcmd__help_commands" \
"*::: :->help" \
&& ret=0

    case $state in
    (help)
        words=($line[1] "${words[@]}")
        (( CURRENT += 1 ))
        curcontext="${curcontext%:*:*}:rampart-ca-help-command-$line[1]:"
        case $line[1] in
            (init)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(serve)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(check)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(recover-admin)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(witness-restart)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(rotate-key)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(backup)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(completions)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(help)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
        esac
    ;;
esac
;;
        esac
    ;;
esac
}

(( $+functions[_rampart-ca_commands] )) ||
_rampart-ca_commands() {
    local commands; commands=(
'init:Create a new CA in a directory\: keys, TLS certificate, databases, config, policy, and a one-time invite for the bootstrap admin (printed once)' \
'serve:Serve the HTTPS API until SIGTERM or SIGINT' \
'check:Validate the config, keys, policy and TLS files without serving' \
'recover-admin:When no admin can log in\: make a one-time invite for an admin, on the CA host (the daemon may keep running). Audited as \`admin_recovery_invite\`, severity high' \
'witness-restart:Begin a new audit witness from the audit database'\''s newest checkpoint, on the CA host, when the old witness is missing or empty (\`serve\` refuses to start then). Compare the database with the SIEM'\''s copy of the checkpoints first. Audited as \`audit_witness_restarted\`, severity high' \
'rotate-key:Replace the user or host CA key in three steps, on the CA host, each followed by a restart of the CA\: \`prepare\` makes and publishes the next key, \`activate\` signs with it and keeps trusting the old one, \`retire\` drops the old one once what it signed has expired. Audited as \`ca_key_rotated\`, severity high. Key files (\`K.next\`, \`K.previous\`) or labels in a PKCS#11 token (\`L.next\`, \`L.previous\`)' \
'backup:Copy the CA'\''s directory into a new directory while the daemon runs\: consistent snapshots of both databases, the audit witness and the sealed recordings, checked (audit chain, witness, recording digests) before the directory gets its name. The key passphrase is never copied' \
'completions:Print a shell completion script (the Debian package installs the bash, zsh and fish ones)' \
'help:Print this message or the help of the given subcommand(s)' \
    )
    _describe -t commands 'rampart-ca commands' commands "$@"
}
(( $+functions[_rampart-ca__subcmd__backup_commands] )) ||
_rampart-ca__subcmd__backup_commands() {
    local commands; commands=()
    _describe -t commands 'rampart-ca backup commands' commands "$@"
}
(( $+functions[_rampart-ca__subcmd__check_commands] )) ||
_rampart-ca__subcmd__check_commands() {
    local commands; commands=()
    _describe -t commands 'rampart-ca check commands' commands "$@"
}
(( $+functions[_rampart-ca__subcmd__completions_commands] )) ||
_rampart-ca__subcmd__completions_commands() {
    local commands; commands=()
    _describe -t commands 'rampart-ca completions commands' commands "$@"
}
(( $+functions[_rampart-ca__subcmd__help_commands] )) ||
_rampart-ca__subcmd__help_commands() {
    local commands; commands=(
'init:Create a new CA in a directory\: keys, TLS certificate, databases, config, policy, and a one-time invite for the bootstrap admin (printed once)' \
'serve:Serve the HTTPS API until SIGTERM or SIGINT' \
'check:Validate the config, keys, policy and TLS files without serving' \
'recover-admin:When no admin can log in\: make a one-time invite for an admin, on the CA host (the daemon may keep running). Audited as \`admin_recovery_invite\`, severity high' \
'witness-restart:Begin a new audit witness from the audit database'\''s newest checkpoint, on the CA host, when the old witness is missing or empty (\`serve\` refuses to start then). Compare the database with the SIEM'\''s copy of the checkpoints first. Audited as \`audit_witness_restarted\`, severity high' \
'rotate-key:Replace the user or host CA key in three steps, on the CA host, each followed by a restart of the CA\: \`prepare\` makes and publishes the next key, \`activate\` signs with it and keeps trusting the old one, \`retire\` drops the old one once what it signed has expired. Audited as \`ca_key_rotated\`, severity high. Key files (\`K.next\`, \`K.previous\`) or labels in a PKCS#11 token (\`L.next\`, \`L.previous\`)' \
'backup:Copy the CA'\''s directory into a new directory while the daemon runs\: consistent snapshots of both databases, the audit witness and the sealed recordings, checked (audit chain, witness, recording digests) before the directory gets its name. The key passphrase is never copied' \
'completions:Print a shell completion script (the Debian package installs the bash, zsh and fish ones)' \
'help:Print this message or the help of the given subcommand(s)' \
    )
    _describe -t commands 'rampart-ca help commands' commands "$@"
}
(( $+functions[_rampart-ca__subcmd__help__subcmd__backup_commands] )) ||
_rampart-ca__subcmd__help__subcmd__backup_commands() {
    local commands; commands=()
    _describe -t commands 'rampart-ca help backup commands' commands "$@"
}
(( $+functions[_rampart-ca__subcmd__help__subcmd__check_commands] )) ||
_rampart-ca__subcmd__help__subcmd__check_commands() {
    local commands; commands=()
    _describe -t commands 'rampart-ca help check commands' commands "$@"
}
(( $+functions[_rampart-ca__subcmd__help__subcmd__completions_commands] )) ||
_rampart-ca__subcmd__help__subcmd__completions_commands() {
    local commands; commands=()
    _describe -t commands 'rampart-ca help completions commands' commands "$@"
}
(( $+functions[_rampart-ca__subcmd__help__subcmd__help_commands] )) ||
_rampart-ca__subcmd__help__subcmd__help_commands() {
    local commands; commands=()
    _describe -t commands 'rampart-ca help help commands' commands "$@"
}
(( $+functions[_rampart-ca__subcmd__help__subcmd__init_commands] )) ||
_rampart-ca__subcmd__help__subcmd__init_commands() {
    local commands; commands=()
    _describe -t commands 'rampart-ca help init commands' commands "$@"
}
(( $+functions[_rampart-ca__subcmd__help__subcmd__recover-admin_commands] )) ||
_rampart-ca__subcmd__help__subcmd__recover-admin_commands() {
    local commands; commands=()
    _describe -t commands 'rampart-ca help recover-admin commands' commands "$@"
}
(( $+functions[_rampart-ca__subcmd__help__subcmd__rotate-key_commands] )) ||
_rampart-ca__subcmd__help__subcmd__rotate-key_commands() {
    local commands; commands=()
    _describe -t commands 'rampart-ca help rotate-key commands' commands "$@"
}
(( $+functions[_rampart-ca__subcmd__help__subcmd__serve_commands] )) ||
_rampart-ca__subcmd__help__subcmd__serve_commands() {
    local commands; commands=()
    _describe -t commands 'rampart-ca help serve commands' commands "$@"
}
(( $+functions[_rampart-ca__subcmd__help__subcmd__witness-restart_commands] )) ||
_rampart-ca__subcmd__help__subcmd__witness-restart_commands() {
    local commands; commands=()
    _describe -t commands 'rampart-ca help witness-restart commands' commands "$@"
}
(( $+functions[_rampart-ca__subcmd__init_commands] )) ||
_rampart-ca__subcmd__init_commands() {
    local commands; commands=()
    _describe -t commands 'rampart-ca init commands' commands "$@"
}
(( $+functions[_rampart-ca__subcmd__recover-admin_commands] )) ||
_rampart-ca__subcmd__recover-admin_commands() {
    local commands; commands=()
    _describe -t commands 'rampart-ca recover-admin commands' commands "$@"
}
(( $+functions[_rampart-ca__subcmd__rotate-key_commands] )) ||
_rampart-ca__subcmd__rotate-key_commands() {
    local commands; commands=()
    _describe -t commands 'rampart-ca rotate-key commands' commands "$@"
}
(( $+functions[_rampart-ca__subcmd__serve_commands] )) ||
_rampart-ca__subcmd__serve_commands() {
    local commands; commands=()
    _describe -t commands 'rampart-ca serve commands' commands "$@"
}
(( $+functions[_rampart-ca__subcmd__witness-restart_commands] )) ||
_rampart-ca__subcmd__witness-restart_commands() {
    local commands; commands=()
    _describe -t commands 'rampart-ca witness-restart commands' commands "$@"
}

if [ "$funcstack[1]" = "_rampart-ca" ]; then
    _rampart-ca "$@"
else
    compdef _rampart-ca rampart-ca
fi
