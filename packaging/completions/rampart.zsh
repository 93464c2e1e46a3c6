#compdef rampart

autoload -U is-at-least

_rampart() {
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
'--home=[State directory (config, key, certificate, session)]:DIR:_files' \
'-h[Print help]' \
'--help[Print help]' \
'-V[Print version]' \
'--version[Print version]' \
":: :_rampart_commands" \
"*::: :->rampart" \
&& ret=0
    case $state in
    (rampart)
        words=($line[1] "${words[@]}")
        (( CURRENT += 1 ))
        curcontext="${curcontext%:*:*}:rampart-command-$line[1]:"
        case $line[1] in
            (enroll)
_arguments "${_arguments_options[@]}" : \
'--ca=[CA URL, e.g. https\://ca.example.com\:8443; several CAs sharing one database\: comma-separated, tried in turn when one cannot be reached]:URL:_default' \
'--invite=[The invite code your admin gave you]:CODE:_default' \
'--ca-fingerprint=[SHA-256 fingerprint of the CA'\''s TLS certificate (printed by \`rampart-ca init\`)]:SHA256:…:_default' \
'--key-name=[A name for the security key, e.g. yubikey-blue]:NAME:_default' \
'(--webauthn --fido2 --code-stdin)--oidc=[Redeem the invite by logging in at this identity provider (OpenID Connect, in a browser)\: links your account there to the invited user, then logs you in and writes the certificate, like \`rampart login\`]:PROVIDER:_default' \
'--home=[State directory (config, key, certificate, session)]:DIR:_files' \
'--code-stdin[Read the TOTP code from standard input instead of prompting]' \
'(--fido2 --code-stdin)--webauthn[Enrol a security key in a browser (WebAuthn) instead of TOTP]' \
'(--code-stdin)--fido2[Enrol a USB security key from this terminal (CTAP2) instead of TOTP]' \
'--device[With --oidc\: use the device authorisation grant (a code to type on another device'\''s browser), for terminals without one]' \
'--no-browser[With --webauthn or --oidc\: print the URL instead of opening a browser]' \
'-h[Print help]' \
'--help[Print help]' \
'-V[Print version]' \
'--version[Print version]' \
&& ret=0
;;
(login)
_arguments "${_arguments_options[@]}" : \
'--ca=[CA URL (default\: the one saved by \`enroll\`)]:URL:_default' \
'--ca-fingerprint=[CA TLS certificate fingerprint (default\: the saved one)]:SHA256:…:_default' \
'--user=[Rampart user name (default\: the saved one)]:NAME:_default' \
'--ttl=[Requested certificate lifetime (policy clamps it), e.g. 1h]:DURATION:_default' \
'--agent-key=[Certify this ssh-agent key (by \`SHA256\:\` fingerprint) instead of the file key]:SHA256:…:_default' \
'(--agent-key)--key=[Where the key lives\: \`file\` (the file key, created if missing) or \`piv\` (YubiKey PIV slot 9a\: generated there once, sent with its attestation so that roles needing a hardware-bound key can be granted)]:KEY:((file\:"The file key in the state directory (or \`--agent-key\`)"
piv\:"The key in YubiKey PIV slot 9a, with its attestation"))' \
'--mfa=[The factor\: a TOTP code (\`--recovery\` for a recovery code), a login at the identity provider named by \`--provider\` (\`oidc\`, in a browser), a security key approved in a browser (\`webauthn\`), or a USB security key used from this terminal (\`fido2\`)]:MFA:((totp\:"A TOTP (or, with \`--recovery\`, recovery) code"
oidc\:"An OpenID Connect login at an identity provider"
webauthn\:"A security key, approved on a page the CA serves (opened in a browser)"
fido2\:"A USB security key, used directly from this terminal (CTAP2)"))' \
'--provider=[Identity provider for \`--mfa oidc\`, as named in the CA'\''s config]:NAME:_default' \
'*--ssh-host=[Also offer the certificate to hosts matching this ssh_config \`Host\` pattern (e.g. \`db-*\` or \`*.prod.example.com\`), besides the CA'\''s bastions. Repeatable; the list is remembered and replaces the saved one]:PATTERN:_default' \
'--home=[State directory (config, key, certificate, session)]:DIR:_files' \
'--code-stdin[Read the code from standard input instead of prompting]' \
'--recovery[Use a recovery code instead of a TOTP code]' \
'--no-browser[With \`--mfa oidc\` or \`webauthn\`\: print the URL instead of opening a browser]' \
'--device[With \`--mfa oidc\`\: use the device authorisation grant (a code to type on another device'\''s browser), for terminals without one]' \
'-h[Print help (see more with '\''--help'\'')]' \
'--help[Print help (see more with '\''--help'\'')]' \
'-V[Print version]' \
'--version[Print version]' \
&& ret=0
;;
(status)
_arguments "${_arguments_options[@]}" : \
'--home=[State directory (config, key, certificate, session)]:DIR:_files' \
'--json[One JSON object instead of the text (the exit status is the same)]' \
'-h[Print help]' \
'--help[Print help]' \
'-V[Print version]' \
'--version[Print version]' \
&& ret=0
;;
(logout)
_arguments "${_arguments_options[@]}" : \
'--home=[State directory (config, key, certificate, session)]:DIR:_files' \
'-h[Print help]' \
'--help[Print help]' \
'-V[Print version]' \
'--version[Print version]' \
&& ret=0
;;
(ls)
_arguments "${_arguments_options[@]}" : \
'--home=[State directory (config, key, certificate, session)]:DIR:_files' \
'--json[One JSON object instead of the table (fields in cli/README.md)]' \
'-h[Print help]' \
'--help[Print help]' \
'-V[Print version]' \
'--version[Print version]' \
&& ret=0
;;
(ssh)
_arguments "${_arguments_options[@]}" : \
'--home=[State directory (config, key, certificate, session)]:DIR:_files' \
'-h[Print help]' \
'--help[Print help]' \
'-V[Print version]' \
'--version[Print version]' \
'*::args -- ssh'\''s own options, LOGIN@TARGET, then the remote command\: passed to ssh unchanged, after `-F <Rampart'\''s ssh_config> -J <bastion>`:_default' \
&& ret=0
;;
(keys)
_arguments "${_arguments_options[@]}" : \
'--home=[State directory (config, key, certificate, session)]:DIR:_files' \
'-h[Print help]' \
'--help[Print help]' \
'-V[Print version]' \
'--version[Print version]' \
":: :_rampart__subcmd__keys_commands" \
"*::: :->keys" \
&& ret=0

    case $state in
    (keys)
        words=($line[1] "${words[@]}")
        (( CURRENT += 1 ))
        curcontext="${curcontext%:*:*}:rampart-keys-command-$line[1]:"
        case $line[1] in
            (add)
_arguments "${_arguments_options[@]}" : \
'--replaces=[The ID of one of your keys that this one replaces (it is removed once the new key is enrolled). After a recovery-code login this is the only way to add a key]:ID:_default' \
'--home=[State directory (config, key, certificate, session)]:DIR:_files' \
'--fido2[Use a USB key from this terminal (CTAP2) instead of a browser page]' \
'(--fido2)--no-browser[Print the page'\''s URL instead of opening a browser]' \
'-h[Print help]' \
'--help[Print help]' \
'-V[Print version]' \
'--version[Print version]' \
':name -- A name for it, e.g. yubikey-blue:_default' \
&& ret=0
;;
(list)
_arguments "${_arguments_options[@]}" : \
'--home=[State directory (config, key, certificate, session)]:DIR:_files' \
'-h[Print help]' \
'--help[Print help]' \
'-V[Print version]' \
'--version[Print version]' \
&& ret=0
;;
(remove)
_arguments "${_arguments_options[@]}" : \
'--home=[State directory (config, key, certificate, session)]:DIR:_files' \
'-h[Print help]' \
'--help[Print help]' \
'-V[Print version]' \
'--version[Print version]' \
':id -- The key'\''s ID:_default' \
&& ret=0
;;
(help)
_arguments "${_arguments_options[@]}" : \
":: :_rampart__subcmd__keys__subcmd__help_commands" \
"*::: :->help" \
&& ret=0

    case $state in
    (help)
        words=($line[1] "${words[@]}")
        (( CURRENT += 1 ))
        curcontext="${curcontext%:*:*}:rampart-keys-help-command-$line[1]:"
        case $line[1] in
            (add)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(list)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(remove)
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
;;
(admin)
_arguments "${_arguments_options[@]}" : \
'--home=[State directory (config, key, certificate, session)]:DIR:_files' \
'-h[Print help]' \
'--help[Print help]' \
'-V[Print version]' \
'--version[Print version]' \
":: :_rampart__subcmd__admin_commands" \
"*::: :->admin" \
&& ret=0

    case $state in
    (admin)
        words=($line[1] "${words[@]}")
        (( CURRENT += 1 ))
        curcontext="${curcontext%:*:*}:rampart-admin-command-$line[1]:"
        case $line[1] in
            (user)
_arguments "${_arguments_options[@]}" : \
'--home=[State directory (config, key, certificate, session)]:DIR:_files' \
'-h[Print help]' \
'--help[Print help]' \
'-V[Print version]' \
'--version[Print version]' \
":: :_rampart__subcmd__admin__subcmd__user_commands" \
"*::: :->user" \
&& ret=0

    case $state in
    (user)
        words=($line[1] "${words[@]}")
        (( CURRENT += 1 ))
        curcontext="${curcontext%:*:*}:rampart-admin-user-command-$line[1]:"
        case $line[1] in
            (add)
_arguments "${_arguments_options[@]}" : \
'*--group=[Group (repeatable)]:GROUP:_default' \
'--home=[State directory (config, key, certificate, session)]:DIR:_files' \
'--admin[Grant admin rights]' \
'-h[Print help]' \
'--help[Print help]' \
'-V[Print version]' \
'--version[Print version]' \
':name -- User name:_default' \
&& ret=0
;;
(list)
_arguments "${_arguments_options[@]}" : \
'--home=[State directory (config, key, certificate, session)]:DIR:_files' \
'--json[A JSON array (the API'\''s user objects) instead of the table]' \
'-h[Print help]' \
'--help[Print help]' \
'-V[Print version]' \
'--version[Print version]' \
&& ret=0
;;
(disable)
_arguments "${_arguments_options[@]}" : \
'--home=[State directory (config, key, certificate, session)]:DIR:_files' \
'-h[Print help]' \
'--help[Print help]' \
'-V[Print version]' \
'--version[Print version]' \
':name -- User name:_default' \
&& ret=0
;;
(enable)
_arguments "${_arguments_options[@]}" : \
'--home=[State directory (config, key, certificate, session)]:DIR:_files' \
'-h[Print help]' \
'--help[Print help]' \
'-V[Print version]' \
'--version[Print version]' \
':name -- User name:_default' \
&& ret=0
;;
(groups)
_arguments "${_arguments_options[@]}" : \
'--home=[State directory (config, key, certificate, session)]:DIR:_files' \
'-h[Print help]' \
'--help[Print help]' \
'-V[Print version]' \
'--version[Print version]' \
':name -- User name:_default' \
'*::groups -- The new groups (none clears them):_default' \
&& ret=0
;;
(link)
_arguments "${_arguments_options[@]}" : \
'--provider=[The provider'\''s name in the CA config]:PROVIDER:_default' \
'--subject=[The provider account'\''s subject (the \`sub\` claim; the CA shows it when it refuses an unlinked login)]:SUB:_default' \
'--home=[State directory (config, key, certificate, session)]:DIR:_files' \
'--unlink[Remove the user'\''s link at this provider]' \
'-h[Print help]' \
'--help[Print help]' \
'-V[Print version]' \
'--version[Print version]' \
':name -- User name:_default' \
&& ret=0
;;
(keys)
_arguments "${_arguments_options[@]}" : \
'--remove=[Remove the key with this ID (from the list) instead of listing]:ID:_default' \
'--home=[State directory (config, key, certificate, session)]:DIR:_files' \
'-h[Print help]' \
'--help[Print help]' \
'-V[Print version]' \
'--version[Print version]' \
':name -- User name:_default' \
&& ret=0
;;
(help)
_arguments "${_arguments_options[@]}" : \
":: :_rampart__subcmd__admin__subcmd__user__subcmd__help_commands" \
"*::: :->help" \
&& ret=0

    case $state in
    (help)
        words=($line[1] "${words[@]}")
        (( CURRENT += 1 ))
        curcontext="${curcontext%:*:*}:rampart-admin-user-help-command-$line[1]:"
        case $line[1] in
            (add)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(list)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(disable)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(enable)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(groups)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(link)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(keys)
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
;;
(invite)
_arguments "${_arguments_options[@]}" : \
'--ttl=[Invite lifetime]:DURATION:_default' \
'--oidc=[Print the \`rampart enroll\` line that redeems the invite with a login at this identity provider, linking the user'\''s account there]:PROVIDER:_default' \
'--home=[State directory (config, key, certificate, session)]:DIR:_files' \
'-h[Print help]' \
'--help[Print help]' \
'-V[Print version]' \
'--version[Print version]' \
':user -- The user:_default' \
&& ret=0
;;
(revoke)
_arguments "${_arguments_options[@]}" : \
'--serial=[Certificate serial number]:N:_default' \
'--user=[Every certificate of this user (the user is disabled too)]:USER:_default' \
'--key=[A public key by fingerprint, and every certificate for it]:SHA256:…:_default' \
'--bastion=[A joined bastion\: its CA credential stops working]:NAME:_default' \
'--host-token=[An unused host join token, by the ID \`rampart admin host-tokens\` shows\: it stops working]:ID:_default' \
'--reason=[Reason, for the audit log]:TEXT:_default' \
'--home=[State directory (config, key, certificate, session)]:DIR:_files' \
'-h[Print help]' \
'--help[Print help]' \
'-V[Print version]' \
'--version[Print version]' \
&& ret=0
;;
(krl)
_arguments "${_arguments_options[@]}" : \
'-o+[Output file (written atomically)]:FILE:_files' \
'--output=[Output file (written atomically)]:FILE:_files' \
'--home=[State directory (config, key, certificate, session)]:DIR:_files' \
'-h[Print help]' \
'--help[Print help]' \
'-V[Print version]' \
'--version[Print version]' \
&& ret=0
;;
(host-cert)
_arguments "${_arguments_options[@]}" : \
'--name=[Host name (key ID and first principal)]:NAME:_default' \
'--pubkey=[The host'\''s public key file, e.g. /etc/ssh/ssh_host_ed25519_key.pub]:FILE:_files' \
'*--principal=[Further principal (repeatable)]:P:_default' \
'--ttl=[Certificate lifetime]:DURATION:_default' \
'-o+[Output file (default\: the key path without \`.pub\`, plus \`-cert.pub\`)]:FILE:_files' \
'--output=[Output file (default\: the key path without \`.pub\`, plus \`-cert.pub\`)]:FILE:_files' \
'--home=[State directory (config, key, certificate, session)]:DIR:_files' \
'-h[Print help]' \
'--help[Print help]' \
'-V[Print version]' \
'--version[Print version]' \
&& ret=0
;;
(host-token)
_arguments "${_arguments_options[@]}" : \
'--name=[Host name (the certificate'\''s key ID and first principal)]:NAME:_default' \
'*--principal=[Further principal (repeatable)]:P:_default' \
'--ttl=[Token lifetime (at most 7d)]:DURATION:_default' \
'--home=[State directory (config, key, certificate, session)]:DIR:_files' \
'-h[Print help]' \
'--help[Print help]' \
'-V[Print version]' \
'--version[Print version]' \
&& ret=0
;;
(host-tokens)
_arguments "${_arguments_options[@]}" : \
'--home=[State directory (config, key, certificate, session)]:DIR:_files' \
'--json[JSON instead of a table]' \
'-h[Print help]' \
'--help[Print help]' \
'-V[Print version]' \
'--version[Print version]' \
&& ret=0
;;
(bastion-token)
_arguments "${_arguments_options[@]}" : \
'--name=[Bind the token to this bastion name (a host name)]:NAME:_default' \
'--ttl=[Token lifetime (at most 24h)]:DURATION:_default' \
'--home=[State directory (config, key, certificate, session)]:DIR:_files' \
'-h[Print help]' \
'--help[Print help]' \
'-V[Print version]' \
'--version[Print version]' \
&& ret=0
;;
(help)
_arguments "${_arguments_options[@]}" : \
":: :_rampart__subcmd__admin__subcmd__help_commands" \
"*::: :->help" \
&& ret=0

    case $state in
    (help)
        words=($line[1] "${words[@]}")
        (( CURRENT += 1 ))
        curcontext="${curcontext%:*:*}:rampart-admin-help-command-$line[1]:"
        case $line[1] in
            (user)
_arguments "${_arguments_options[@]}" : \
":: :_rampart__subcmd__admin__subcmd__help__subcmd__user_commands" \
"*::: :->user" \
&& ret=0

    case $state in
    (user)
        words=($line[1] "${words[@]}")
        (( CURRENT += 1 ))
        curcontext="${curcontext%:*:*}:rampart-admin-help-user-command-$line[1]:"
        case $line[1] in
            (add)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(list)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(disable)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(enable)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(groups)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(link)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(keys)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
        esac
    ;;
esac
;;
(invite)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(revoke)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(krl)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(host-cert)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(host-token)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(host-tokens)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(bastion-token)
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
;;
(audit)
_arguments "${_arguments_options[@]}" : \
'--home=[State directory (config, key, certificate, session)]:DIR:_files' \
'-h[Print help]' \
'--help[Print help]' \
'-V[Print version]' \
'--version[Print version]' \
":: :_rampart__subcmd__audit_commands" \
"*::: :->audit" \
&& ret=0

    case $state in
    (audit)
        words=($line[1] "${words[@]}")
        (( CURRENT += 1 ))
        curcontext="${curcontext%:*:*}:rampart-audit-command-$line[1]:"
        case $line[1] in
            (verify)
_arguments "${_arguments_options[@]}" : \
'--db=[The audit database\: an SQLite file, or a postgres\:// URL for a log several CAs share (password from PGPASSWORD when the URL has none)]:FILE|URL:_files' \
'--export=[A JSON Lines export (\`rampart audit export --format jsonl\`) to check offline]:FILE:_files' \
'--audit-pubkey=[The audit public key (OpenSSH format) to check checkpoint signatures with; required with --export]:FILE:_files' \
'--recordings=[Also check every sealed session recording against the digest the log sealed\: in DIR (the CA'\''s \`recordings/\` directory), or in the shared PostgreSQL audit database at URL (the same URL as --db); needs --db]:DIR|URL:_files' \
'--witness=[A witness file (the CA'\''s \`\[audit\] witness_file\`, or a copy of it from another host)\: fail when the database is behind any line of it, holds another hash at a witnessed sequence, or has a retention anchor the witness never saw. Needs --db]:FILE:_files' \
'--expect-head=[A head recorded elsewhere (the newest event'\''s \`seq\` and \`hash\` in the SIEM, or a head this command printed before), as SEQ\:HASH\: fail when the database is behind it or has another hash there. Needs --db]:SEQ:HASH:_default' \
'--home=[State directory (config, key, certificate, session)]:DIR:_files' \
'-h[Print help]' \
'--help[Print help]' \
'-V[Print version]' \
'--version[Print version]' \
&& ret=0
;;
(export)
_arguments "${_arguments_options[@]}" : \
'--db=[The audit database, opened read-only\: an SQLite file, or a postgres\:// URL (password from PGPASSWORD when the URL has none)]:FILE|URL:_files' \
'--format=[Output format]:FORMAT:((jsonl\:"JSON Lines in Rampart'\''s schema, with hashes and signed checkpoints"
cef\:"ArcSight Common Event Format"
ocsf\:"OCSF 1.3.0 JSON, one event per line"
syslog\:"RFC 5424 syslog with structured data"))' \
'--since=[Only events at or after this time (RFC 3339, e.g. 2025-03-01T00\:00\:00Z)]:RFC3339:_default' \
'--until=[Only events before this time (RFC 3339)]:RFC3339:_default' \
'*--kind=[Only this kind, by name or code (repeatable; not with --format jsonl)]:KIND:_default' \
'--user=[Only events about this user (not with --format jsonl)]:USER:_default' \
'-o+[Output file (default\: standard output)]:FILE:_files' \
'--output=[Output file (default\: standard output)]:FILE:_files' \
'--home=[State directory (config, key, certificate, session)]:DIR:_files' \
'-h[Print help (see more with '\''--help'\'')]' \
'--help[Print help (see more with '\''--help'\'')]' \
'-V[Print version]' \
'--version[Print version]' \
&& ret=0
;;
(help)
_arguments "${_arguments_options[@]}" : \
":: :_rampart__subcmd__audit__subcmd__help_commands" \
"*::: :->help" \
&& ret=0

    case $state in
    (help)
        words=($line[1] "${words[@]}")
        (( CURRENT += 1 ))
        curcontext="${curcontext%:*:*}:rampart-audit-help-command-$line[1]:"
        case $line[1] in
            (verify)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(export)
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
;;
(sessions)
_arguments "${_arguments_options[@]}" : \
'--home=[State directory (config, key, certificate, session)]:DIR:_files' \
'-h[Print help]' \
'--help[Print help]' \
'-V[Print version]' \
'--version[Print version]' \
":: :_rampart__subcmd__sessions_commands" \
"*::: :->sessions" \
&& ret=0

    case $state in
    (sessions)
        words=($line[1] "${words[@]}")
        (( CURRENT += 1 ))
        curcontext="${curcontext%:*:*}:rampart-sessions-command-$line[1]:"
        case $line[1] in
            (list)
_arguments "${_arguments_options[@]}" : \
'--user=[Only this user'\''s sessions]:USER:_default' \
'--target=[Only sessions to this target]:TARGET:_default' \
'--limit=[At most this many (1-1000)]:LIMIT:_default' \
'--home=[State directory (config, key, certificate, session)]:DIR:_files' \
'--json[Print JSON instead of a table]' \
'-h[Print help]' \
'--help[Print help]' \
'-V[Print version]' \
'--version[Print version]' \
&& ret=0
;;
(play)
_arguments "${_arguments_options[@]}" : \
'--speed=[Playback speed; 2 is twice as fast, 0 prints everything at once]:SPEED:_default' \
'--home=[State directory (config, key, certificate, session)]:DIR:_files' \
'--raw[Write the verified asciicast v2 file to stdout instead of replaying it (for \`asciinema play -\` or an archive)]' \
'-h[Print help]' \
'--help[Print help]' \
'-V[Print version]' \
'--version[Print version]' \
':id -- The session ID (from `rampart sessions list`):_default' \
&& ret=0
;;
(help)
_arguments "${_arguments_options[@]}" : \
":: :_rampart__subcmd__sessions__subcmd__help_commands" \
"*::: :->help" \
&& ret=0

    case $state in
    (help)
        words=($line[1] "${words[@]}")
        (( CURRENT += 1 ))
        curcontext="${curcontext%:*:*}:rampart-sessions-help-command-$line[1]:"
        case $line[1] in
            (list)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(play)
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
;;
(policy)
_arguments "${_arguments_options[@]}" : \
'--home=[State directory (config, key, certificate, session)]:DIR:_files' \
'-h[Print help]' \
'--help[Print help]' \
'-V[Print version]' \
'--version[Print version]' \
":: :_rampart__subcmd__policy_commands" \
"*::: :->policy" \
&& ret=0

    case $state in
    (policy)
        words=($line[1] "${words[@]}")
        (( CURRENT += 1 ))
        curcontext="${curcontext%:*:*}:rampart-policy-command-$line[1]:"
        case $line[1] in
            (check)
_arguments "${_arguments_options[@]}" : \
'--ca-config=[The CA'\''s config (\`rampart-ca.toml\`)\: also lint what depends on it, e.g. roles needing phishing-resistant keys while \`\[webauthn\]\` trusts no key model]:FILE:_files' \
'--home=[State directory (config, key, certificate, session)]:DIR:_files' \
'-h[Print help]' \
'--help[Print help]' \
'-V[Print version]' \
'--version[Print version]' \
':file -- The policy file (TOML):_files' \
&& ret=0
;;
(test)
_arguments "${_arguments_options[@]}" : \
'--user=[User name]:USER:_default' \
'*--groups=[The user'\''s groups, comma-separated]:G1,G2:_default' \
'--login=[Login (principal) the user wants]:LOGIN:_default' \
'--factor=[The factor used]:FACTOR:((totp\:"TOTP code"
recovery\:"Recovery code"
webauthn\:"WebAuthn without user verification"
webauthn-uv\:"WebAuthn with user verification (PIN or biometric) from a key the CA vouches for (attested or allow-listed)\: phishing-resistant"
webauthn-unattested\:"WebAuthn without user verification from an unattested key"
webauthn-uv-unattested\:"WebAuthn with user verification from a key the CA does not vouch for\: unattested-key"
webauthn-link\:"\`webauthn\`, approved on the CA'\''s page through a link rather than by the CLI from a key on this machine (roles with \`webauthn_link = false\` refuse the \`-link\` factors)"
webauthn-uv-link\:"\`webauthn-uv\` approved through a link"
webauthn-unattested-link\:"\`webauthn-unattested\` approved through a link"
webauthn-uv-unattested-link\:"\`webauthn-uv-unattested\` approved through a link"
oidc\:"OpenID Connect step-up"))' \
'--mfa-age=[How long ago the factor was verified]:DURATION:_default' \
'--ttl=[Requested certificate lifetime]:DURATION:_default' \
'--home=[State directory (config, key, certificate, session)]:DIR:_files' \
'--json[Print the decision as JSON]' \
'-h[Print help (see more with '\''--help'\'')]' \
'--help[Print help (see more with '\''--help'\'')]' \
'-V[Print version]' \
'--version[Print version]' \
':file -- The policy file (TOML):_files' \
&& ret=0
;;
(help)
_arguments "${_arguments_options[@]}" : \
":: :_rampart__subcmd__policy__subcmd__help_commands" \
"*::: :->help" \
&& ret=0

    case $state in
    (help)
        words=($line[1] "${words[@]}")
        (( CURRENT += 1 ))
        curcontext="${curcontext%:*:*}:rampart-policy-help-command-$line[1]:"
        case $line[1] in
            (check)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(test)
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
;;
(completions)
_arguments "${_arguments_options[@]}" : \
'--home=[State directory (config, key, certificate, session)]:DIR:_files' \
'-h[Print help]' \
'--help[Print help]' \
'-V[Print version]' \
'--version[Print version]' \
':shell -- The shell:(bash elvish fish powershell zsh)' \
&& ret=0
;;
(dev)
_arguments "${_arguments_options[@]}" : \
'--dir=[Directory for the demo CA'\''s keys, database and secrets]:DIR:_files' \
'--listen=[Address the CA listens on]:ADDR:_default' \
'--ca-bin=[The \`rampart-ca\` binary (default\: beside \`rampart\`, else on PATH)]:FILE:_files' \
'--bastion-listen=[Address the bastion listens on]:ADDR:_default' \
'--bastion-bin=[The \`rampart-bastion\` binary (default\: beside \`rampart\`, else on PATH)]:FILE:_files' \
'--target=[The demo target, \`NAME=HOST\[\:PORT\]\` (default\: the local sshd on 127.0.0.1\:22 when one listens). Used when the bastion is first joined]:NAME=HOST[:PORT]:_default' \
'--target-host-key=[Pin the target'\''s host key from this public key file (default for the local sshd\: /etc/ssh/ssh_host_ed25519_key.pub; for --target\: expect a host certificate from the Rampart host CA)]:FILE:_files' \
'--home=[State directory (config, key, certificate, session)]:DIR:_files' \
'--no-bastion[Run only the CA, no bastion]' \
'-h[Print help]' \
'--help[Print help]' \
'-V[Print version]' \
'--version[Print version]' \
&& ret=0
;;
(host)
_arguments "${_arguments_options[@]}" : \
'--home=[State directory (config, key, certificate, session)]:DIR:_files' \
'-h[Print help]' \
'--help[Print help]' \
'-V[Print version]' \
'--version[Print version]' \
":: :_rampart__subcmd__host_commands" \
"*::: :->host" \
&& ret=0

    case $state in
    (host)
        words=($line[1] "${words[@]}")
        (( CURRENT += 1 ))
        curcontext="${curcontext%:*:*}:rampart-host-command-$line[1]:"
        case $line[1] in
            (krl-sync)
_arguments "${_arguments_options[@]}" : \
'--ca=[CA URL, e.g. https\://ca.example.com\:8443; several CAs sharing one database\: comma-separated, tried in turn when one cannot be reached]:URL:_default' \
'--ca-fingerprint=[SHA-256 fingerprint of the CA'\''s TLS certificate]:SHA256:…:_default' \
'--ca-key=[The user CA public key(s) the KRL signature must verify with (the TrustedUserCAKeys file)]:FILE:_files' \
'--out=[Where to install the KRL (its signature goes to FILE.sig)]:FILE:_files' \
'--max-age=[Refuse a KRL whose signed generation date is older than this (the CA re-signs its KRL hourly), e.g. 6h]:DURATION:_default' \
'--home=[State directory (config, key, certificate, session)]:DIR:_files' \
'-h[Print help]' \
'--help[Print help]' \
'-V[Print version]' \
'--version[Print version]' \
&& ret=0
;;
(principals)
_arguments "${_arguments_options[@]}" : \
'--policy=[The host policy file (TOML)]:FILE:_files' \
'--home=[State directory (config, key, certificate, session)]:DIR:_files' \
'-h[Print help]' \
'--help[Print help]' \
'-V[Print version]' \
'--version[Print version]' \
':account -- The local account being logged in to (sshd'\''s %u):_default' \
':key_type -- The key type (sshd'\''s %t), e.g. ssh-ed25519-cert-v01@openssh.com:_default' \
':cert -- The certificate, base64 (sshd'\''s %k):_default' \
&& ret=0
;;
(install)
_arguments "${_arguments_options[@]}" : \
'--ca=[CA URL\: fetch the user CA key and the first KRL from it, and configure the timer]:URL:_default' \
'--ca-fingerprint=[SHA-256 fingerprint of the CA'\''s TLS certificate]:SHA256:…:_default' \
'--root=[Write below this directory instead of / (for tests and images)]:DIR:_files' \
'--rampart-bin=[Path of the rampart binary on the host, as sshd will run it]:FILE:_files' \
'--principals-user=[The unprivileged user sshd runs \`rampart host principals\` as]:USER:_default' \
'--join-token=[A host join token (\`rampart admin host-token\`)\: when the host has no certificate yet, get its first one from the CA for --host-key, and have sshd present it. Pass it as --join-token=TOKEN]:TOKEN:_default' \
'--host-key=[The host key the certificate is for, as sshd reads it (its \`.pub\` is sent; the certificate goes beside it as \`…-cert.pub\`)]:FILE:_files' \
'--home=[State directory (config, key, certificate, session)]:DIR:_files' \
'--write[Write the files (default\: only print what would be written)]' \
'-h[Print help]' \
'--help[Print help]' \
'-V[Print version]' \
'--version[Print version]' \
&& ret=0
;;
(renew-cert)
_arguments "${_arguments_options[@]}" : \
'--ca=[CA URL, e.g. https\://ca.example.com\:8443; several CAs sharing one database\: comma-separated, tried in turn when one cannot be reached]:URL:_default' \
'--ca-fingerprint=[SHA-256 fingerprint of the CA'\''s TLS certificate]:SHA256:…:_default' \
'--key=[The host'\''s private key (sshd'\''s HostKey)]:FILE:_files' \
'--cert=[The host certificate to renew and replace (sshd'\''s HostCertificate); default\: the key'\''s path with -cert.pub]:FILE:_files' \
'--renew-before=[Renew only when less than this is left of the certificate, e.g. 10d]:DURATION:_default' \
'--home=[State directory (config, key, certificate, session)]:DIR:_files' \
'-h[Print help]' \
'--help[Print help]' \
'-V[Print version]' \
'--version[Print version]' \
&& ret=0
;;
(help)
_arguments "${_arguments_options[@]}" : \
":: :_rampart__subcmd__host__subcmd__help_commands" \
"*::: :->help" \
&& ret=0

    case $state in
    (help)
        words=($line[1] "${words[@]}")
        (( CURRENT += 1 ))
        curcontext="${curcontext%:*:*}:rampart-host-help-command-$line[1]:"
        case $line[1] in
            (krl-sync)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(principals)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(install)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(renew-cert)
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
;;
(help)
_arguments "${_arguments_options[@]}" : \
":: :_rampart__subcmd__help_commands" \
"*::: :->help" \
&& ret=0

    case $state in
    (help)
        words=($line[1] "${words[@]}")
        (( CURRENT += 1 ))
        curcontext="${curcontext%:*:*}:rampart-help-command-$line[1]:"
        case $line[1] in
            (enroll)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(login)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(status)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(logout)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(ls)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(ssh)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(keys)
_arguments "${_arguments_options[@]}" : \
":: :_rampart__subcmd__help__subcmd__keys_commands" \
"*::: :->keys" \
&& ret=0

    case $state in
    (keys)
        words=($line[1] "${words[@]}")
        (( CURRENT += 1 ))
        curcontext="${curcontext%:*:*}:rampart-help-keys-command-$line[1]:"
        case $line[1] in
            (add)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(list)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(remove)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
        esac
    ;;
esac
;;
(admin)
_arguments "${_arguments_options[@]}" : \
":: :_rampart__subcmd__help__subcmd__admin_commands" \
"*::: :->admin" \
&& ret=0

    case $state in
    (admin)
        words=($line[1] "${words[@]}")
        (( CURRENT += 1 ))
        curcontext="${curcontext%:*:*}:rampart-help-admin-command-$line[1]:"
        case $line[1] in
            (user)
_arguments "${_arguments_options[@]}" : \
":: :_rampart__subcmd__help__subcmd__admin__subcmd__user_commands" \
"*::: :->user" \
&& ret=0

    case $state in
    (user)
        words=($line[1] "${words[@]}")
        (( CURRENT += 1 ))
        curcontext="${curcontext%:*:*}:rampart-help-admin-user-command-$line[1]:"
        case $line[1] in
            (add)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(list)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(disable)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(enable)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(groups)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(link)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(keys)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
        esac
    ;;
esac
;;
(invite)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(revoke)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(krl)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(host-cert)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(host-token)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(host-tokens)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(bastion-token)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
        esac
    ;;
esac
;;
(audit)
_arguments "${_arguments_options[@]}" : \
":: :_rampart__subcmd__help__subcmd__audit_commands" \
"*::: :->audit" \
&& ret=0

    case $state in
    (audit)
        words=($line[1] "${words[@]}")
        (( CURRENT += 1 ))
        curcontext="${curcontext%:*:*}:rampart-help-audit-command-$line[1]:"
        case $line[1] in
            (verify)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(export)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
        esac
    ;;
esac
;;
(sessions)
_arguments "${_arguments_options[@]}" : \
":: :_rampart__subcmd__help__subcmd__sessions_commands" \
"*::: :->sessions" \
&& ret=0

    case $state in
    (sessions)
        words=($line[1] "${words[@]}")
        (( CURRENT += 1 ))
        curcontext="${curcontext%:*:*}:rampart-help-sessions-command-$line[1]:"
        case $line[1] in
            (list)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(play)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
        esac
    ;;
esac
;;
(policy)
_arguments "${_arguments_options[@]}" : \
":: :_rampart__subcmd__help__subcmd__policy_commands" \
"*::: :->policy" \
&& ret=0

    case $state in
    (policy)
        words=($line[1] "${words[@]}")
        (( CURRENT += 1 ))
        curcontext="${curcontext%:*:*}:rampart-help-policy-command-$line[1]:"
        case $line[1] in
            (check)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(test)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
        esac
    ;;
esac
;;
(completions)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(dev)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(host)
_arguments "${_arguments_options[@]}" : \
":: :_rampart__subcmd__help__subcmd__host_commands" \
"*::: :->host" \
&& ret=0

    case $state in
    (host)
        words=($line[1] "${words[@]}")
        (( CURRENT += 1 ))
        curcontext="${curcontext%:*:*}:rampart-help-host-command-$line[1]:"
        case $line[1] in
            (krl-sync)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(principals)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(install)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(renew-cert)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
        esac
    ;;
esac
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

(( $+functions[_rampart_commands] )) ||
_rampart_commands() {
    local commands; commands=(
'enroll:Redeem an invite\: register TOTP (or a security key) and receive recovery codes' \
'login:Prove MFA and get a certificate for your SSH key' \
'status:Show who you are and how long your certificate lasts (exit 1 without a valid one)' \
'logout:End the session, delete the certificate and remove the key from ssh-agent' \
'ls:List the targets you may reach through the bastions, with your logins there' \
'ssh:Run ssh to LOGIN@TARGET through the bastion that serves it' \
'keys:Add, list and remove your security keys (WebAuthn / FIDO2)' \
'admin:Administer users, invites, revocations and host certificates' \
'audit:Work with the audit log' \
'sessions:List bastion sessions and replay their recordings (admin)' \
'policy:Check and try out a policy file' \
'completions:Print a shell completion script' \
'dev:Run a local CA for trying Rampart on one machine' \
'host:Helpers for production hosts\: KRL sync, sshd principals, install' \
'help:Print this message or the help of the given subcommand(s)' \
    )
    _describe -t commands 'rampart commands' commands "$@"
}
(( $+functions[_rampart__subcmd__admin_commands] )) ||
_rampart__subcmd__admin_commands() {
    local commands; commands=(
'user:Manage users' \
'invite:Create a single-use enrolment invite for an existing user' \
'revoke:Revoke a certificate serial, all of a user'\''s certificates, or a key' \
'krl:Download the current KRL (OpenSSH binary format) for sshd'\''s \`RevokedKeys\`' \
'host-cert:Sign a host key with the host CA' \
'host-token:Create a single-use join token for a host'\''s first certificate (\`rampart host install --join-token=…\` on the host)' \
'host-tokens:List the host join tokens\: unused ones, and those used or expired in the last day (withdraw one with \`revoke --host-token ID\`)' \
'bastion-token:Create a single-use join token for a bastion (\`rampart-bastion join\`)' \
'help:Print this message or the help of the given subcommand(s)' \
    )
    _describe -t commands 'rampart admin commands' commands "$@"
}
(( $+functions[_rampart__subcmd__admin__subcmd__bastion-token_commands] )) ||
_rampart__subcmd__admin__subcmd__bastion-token_commands() {
    local commands; commands=()
    _describe -t commands 'rampart admin bastion-token commands' commands "$@"
}
(( $+functions[_rampart__subcmd__admin__subcmd__help_commands] )) ||
_rampart__subcmd__admin__subcmd__help_commands() {
    local commands; commands=(
'user:Manage users' \
'invite:Create a single-use enrolment invite for an existing user' \
'revoke:Revoke a certificate serial, all of a user'\''s certificates, or a key' \
'krl:Download the current KRL (OpenSSH binary format) for sshd'\''s \`RevokedKeys\`' \
'host-cert:Sign a host key with the host CA' \
'host-token:Create a single-use join token for a host'\''s first certificate (\`rampart host install --join-token=…\` on the host)' \
'host-tokens:List the host join tokens\: unused ones, and those used or expired in the last day (withdraw one with \`revoke --host-token ID\`)' \
'bastion-token:Create a single-use join token for a bastion (\`rampart-bastion join\`)' \
'help:Print this message or the help of the given subcommand(s)' \
    )
    _describe -t commands 'rampart admin help commands' commands "$@"
}
(( $+functions[_rampart__subcmd__admin__subcmd__help__subcmd__bastion-token_commands] )) ||
_rampart__subcmd__admin__subcmd__help__subcmd__bastion-token_commands() {
    local commands; commands=()
    _describe -t commands 'rampart admin help bastion-token commands' commands "$@"
}
(( $+functions[_rampart__subcmd__admin__subcmd__help__subcmd__help_commands] )) ||
_rampart__subcmd__admin__subcmd__help__subcmd__help_commands() {
    local commands; commands=()
    _describe -t commands 'rampart admin help help commands' commands "$@"
}
(( $+functions[_rampart__subcmd__admin__subcmd__help__subcmd__host-cert_commands] )) ||
_rampart__subcmd__admin__subcmd__help__subcmd__host-cert_commands() {
    local commands; commands=()
    _describe -t commands 'rampart admin help host-cert commands' commands "$@"
}
(( $+functions[_rampart__subcmd__admin__subcmd__help__subcmd__host-token_commands] )) ||
_rampart__subcmd__admin__subcmd__help__subcmd__host-token_commands() {
    local commands; commands=()
    _describe -t commands 'rampart admin help host-token commands' commands "$@"
}
(( $+functions[_rampart__subcmd__admin__subcmd__help__subcmd__host-tokens_commands] )) ||
_rampart__subcmd__admin__subcmd__help__subcmd__host-tokens_commands() {
    local commands; commands=()
    _describe -t commands 'rampart admin help host-tokens commands' commands "$@"
}
(( $+functions[_rampart__subcmd__admin__subcmd__help__subcmd__invite_commands] )) ||
_rampart__subcmd__admin__subcmd__help__subcmd__invite_commands() {
    local commands; commands=()
    _describe -t commands 'rampart admin help invite commands' commands "$@"
}
(( $+functions[_rampart__subcmd__admin__subcmd__help__subcmd__krl_commands] )) ||
_rampart__subcmd__admin__subcmd__help__subcmd__krl_commands() {
    local commands; commands=()
    _describe -t commands 'rampart admin help krl commands' commands "$@"
}
(( $+functions[_rampart__subcmd__admin__subcmd__help__subcmd__revoke_commands] )) ||
_rampart__subcmd__admin__subcmd__help__subcmd__revoke_commands() {
    local commands; commands=()
    _describe -t commands 'rampart admin help revoke commands' commands "$@"
}
(( $+functions[_rampart__subcmd__admin__subcmd__help__subcmd__user_commands] )) ||
_rampart__subcmd__admin__subcmd__help__subcmd__user_commands() {
    local commands; commands=(
'add:Create a user' \
'list:List users' \
'disable:Disable a user (ends their sessions)' \
'enable:Enable a disabled user' \
'groups:Replace a user'\''s groups' \
'link:Link a user to their account at an OIDC provider (its subject, \`sub\`), so that account can log in as the user; \`--unlink\` removes the link' \
'keys:List a user'\''s security keys, or remove one' \
    )
    _describe -t commands 'rampart admin help user commands' commands "$@"
}
(( $+functions[_rampart__subcmd__admin__subcmd__help__subcmd__user__subcmd__add_commands] )) ||
_rampart__subcmd__admin__subcmd__help__subcmd__user__subcmd__add_commands() {
    local commands; commands=()
    _describe -t commands 'rampart admin help user add commands' commands "$@"
}
(( $+functions[_rampart__subcmd__admin__subcmd__help__subcmd__user__subcmd__disable_commands] )) ||
_rampart__subcmd__admin__subcmd__help__subcmd__user__subcmd__disable_commands() {
    local commands; commands=()
    _describe -t commands 'rampart admin help user disable commands' commands "$@"
}
(( $+functions[_rampart__subcmd__admin__subcmd__help__subcmd__user__subcmd__enable_commands] )) ||
_rampart__subcmd__admin__subcmd__help__subcmd__user__subcmd__enable_commands() {
    local commands; commands=()
    _describe -t commands 'rampart admin help user enable commands' commands "$@"
}
(( $+functions[_rampart__subcmd__admin__subcmd__help__subcmd__user__subcmd__groups_commands] )) ||
_rampart__subcmd__admin__subcmd__help__subcmd__user__subcmd__groups_commands() {
    local commands; commands=()
    _describe -t commands 'rampart admin help user groups commands' commands "$@"
}
(( $+functions[_rampart__subcmd__admin__subcmd__help__subcmd__user__subcmd__keys_commands] )) ||
_rampart__subcmd__admin__subcmd__help__subcmd__user__subcmd__keys_commands() {
    local commands; commands=()
    _describe -t commands 'rampart admin help user keys commands' commands "$@"
}
(( $+functions[_rampart__subcmd__admin__subcmd__help__subcmd__user__subcmd__link_commands] )) ||
_rampart__subcmd__admin__subcmd__help__subcmd__user__subcmd__link_commands() {
    local commands; commands=()
    _describe -t commands 'rampart admin help user link commands' commands "$@"
}
(( $+functions[_rampart__subcmd__admin__subcmd__help__subcmd__user__subcmd__list_commands] )) ||
_rampart__subcmd__admin__subcmd__help__subcmd__user__subcmd__list_commands() {
    local commands; commands=()
    _describe -t commands 'rampart admin help user list commands' commands "$@"
}
(( $+functions[_rampart__subcmd__admin__subcmd__host-cert_commands] )) ||
_rampart__subcmd__admin__subcmd__host-cert_commands() {
    local commands; commands=()
    _describe -t commands 'rampart admin host-cert commands' commands "$@"
}
(( $+functions[_rampart__subcmd__admin__subcmd__host-token_commands] )) ||
_rampart__subcmd__admin__subcmd__host-token_commands() {
    local commands; commands=()
    _describe -t commands 'rampart admin host-token commands' commands "$@"
}
(( $+functions[_rampart__subcmd__admin__subcmd__host-tokens_commands] )) ||
_rampart__subcmd__admin__subcmd__host-tokens_commands() {
    local commands; commands=()
    _describe -t commands 'rampart admin host-tokens commands' commands "$@"
}
(( $+functions[_rampart__subcmd__admin__subcmd__invite_commands] )) ||
_rampart__subcmd__admin__subcmd__invite_commands() {
    local commands; commands=()
    _describe -t commands 'rampart admin invite commands' commands "$@"
}
(( $+functions[_rampart__subcmd__admin__subcmd__krl_commands] )) ||
_rampart__subcmd__admin__subcmd__krl_commands() {
    local commands; commands=()
    _describe -t commands 'rampart admin krl commands' commands "$@"
}
(( $+functions[_rampart__subcmd__admin__subcmd__revoke_commands] )) ||
_rampart__subcmd__admin__subcmd__revoke_commands() {
    local commands; commands=()
    _describe -t commands 'rampart admin revoke commands' commands "$@"
}
(( $+functions[_rampart__subcmd__admin__subcmd__user_commands] )) ||
_rampart__subcmd__admin__subcmd__user_commands() {
    local commands; commands=(
'add:Create a user' \
'list:List users' \
'disable:Disable a user (ends their sessions)' \
'enable:Enable a disabled user' \
'groups:Replace a user'\''s groups' \
'link:Link a user to their account at an OIDC provider (its subject, \`sub\`), so that account can log in as the user; \`--unlink\` removes the link' \
'keys:List a user'\''s security keys, or remove one' \
'help:Print this message or the help of the given subcommand(s)' \
    )
    _describe -t commands 'rampart admin user commands' commands "$@"
}
(( $+functions[_rampart__subcmd__admin__subcmd__user__subcmd__add_commands] )) ||
_rampart__subcmd__admin__subcmd__user__subcmd__add_commands() {
    local commands; commands=()
    _describe -t commands 'rampart admin user add commands' commands "$@"
}
(( $+functions[_rampart__subcmd__admin__subcmd__user__subcmd__disable_commands] )) ||
_rampart__subcmd__admin__subcmd__user__subcmd__disable_commands() {
    local commands; commands=()
    _describe -t commands 'rampart admin user disable commands' commands "$@"
}
(( $+functions[_rampart__subcmd__admin__subcmd__user__subcmd__enable_commands] )) ||
_rampart__subcmd__admin__subcmd__user__subcmd__enable_commands() {
    local commands; commands=()
    _describe -t commands 'rampart admin user enable commands' commands "$@"
}
(( $+functions[_rampart__subcmd__admin__subcmd__user__subcmd__groups_commands] )) ||
_rampart__subcmd__admin__subcmd__user__subcmd__groups_commands() {
    local commands; commands=()
    _describe -t commands 'rampart admin user groups commands' commands "$@"
}
(( $+functions[_rampart__subcmd__admin__subcmd__user__subcmd__help_commands] )) ||
_rampart__subcmd__admin__subcmd__user__subcmd__help_commands() {
    local commands; commands=(
'add:Create a user' \
'list:List users' \
'disable:Disable a user (ends their sessions)' \
'enable:Enable a disabled user' \
'groups:Replace a user'\''s groups' \
'link:Link a user to their account at an OIDC provider (its subject, \`sub\`), so that account can log in as the user; \`--unlink\` removes the link' \
'keys:List a user'\''s security keys, or remove one' \
'help:Print this message or the help of the given subcommand(s)' \
    )
    _describe -t commands 'rampart admin user help commands' commands "$@"
}
(( $+functions[_rampart__subcmd__admin__subcmd__user__subcmd__help__subcmd__add_commands] )) ||
_rampart__subcmd__admin__subcmd__user__subcmd__help__subcmd__add_commands() {
    local commands; commands=()
    _describe -t commands 'rampart admin user help add commands' commands "$@"
}
(( $+functions[_rampart__subcmd__admin__subcmd__user__subcmd__help__subcmd__disable_commands] )) ||
_rampart__subcmd__admin__subcmd__user__subcmd__help__subcmd__disable_commands() {
    local commands; commands=()
    _describe -t commands 'rampart admin user help disable commands' commands "$@"
}
(( $+functions[_rampart__subcmd__admin__subcmd__user__subcmd__help__subcmd__enable_commands] )) ||
_rampart__subcmd__admin__subcmd__user__subcmd__help__subcmd__enable_commands() {
    local commands; commands=()
    _describe -t commands 'rampart admin user help enable commands' commands "$@"
}
(( $+functions[_rampart__subcmd__admin__subcmd__user__subcmd__help__subcmd__groups_commands] )) ||
_rampart__subcmd__admin__subcmd__user__subcmd__help__subcmd__groups_commands() {
    local commands; commands=()
    _describe -t commands 'rampart admin user help groups commands' commands "$@"
}
(( $+functions[_rampart__subcmd__admin__subcmd__user__subcmd__help__subcmd__help_commands] )) ||
_rampart__subcmd__admin__subcmd__user__subcmd__help__subcmd__help_commands() {
    local commands; commands=()
    _describe -t commands 'rampart admin user help help commands' commands "$@"
}
(( $+functions[_rampart__subcmd__admin__subcmd__user__subcmd__help__subcmd__keys_commands] )) ||
_rampart__subcmd__admin__subcmd__user__subcmd__help__subcmd__keys_commands() {
    local commands; commands=()
    _describe -t commands 'rampart admin user help keys commands' commands "$@"
}
(( $+functions[_rampart__subcmd__admin__subcmd__user__subcmd__help__subcmd__link_commands] )) ||
_rampart__subcmd__admin__subcmd__user__subcmd__help__subcmd__link_commands() {
    local commands; commands=()
    _describe -t commands 'rampart admin user help link commands' commands "$@"
}
(( $+functions[_rampart__subcmd__admin__subcmd__user__subcmd__help__subcmd__list_commands] )) ||
_rampart__subcmd__admin__subcmd__user__subcmd__help__subcmd__list_commands() {
    local commands; commands=()
    _describe -t commands 'rampart admin user help list commands' commands "$@"
}
(( $+functions[_rampart__subcmd__admin__subcmd__user__subcmd__keys_commands] )) ||
_rampart__subcmd__admin__subcmd__user__subcmd__keys_commands() {
    local commands; commands=()
    _describe -t commands 'rampart admin user keys commands' commands "$@"
}
(( $+functions[_rampart__subcmd__admin__subcmd__user__subcmd__link_commands] )) ||
_rampart__subcmd__admin__subcmd__user__subcmd__link_commands() {
    local commands; commands=()
    _describe -t commands 'rampart admin user link commands' commands "$@"
}
(( $+functions[_rampart__subcmd__admin__subcmd__user__subcmd__list_commands] )) ||
_rampart__subcmd__admin__subcmd__user__subcmd__list_commands() {
    local commands; commands=()
    _describe -t commands 'rampart admin user list commands' commands "$@"
}
(( $+functions[_rampart__subcmd__audit_commands] )) ||
_rampart__subcmd__audit_commands() {
    local commands; commands=(
'verify:Verify an audit database (hash chain and signed checkpoints), or prove a JSON Lines export complete and unaltered' \
'export:Export events as JSON Lines (provable), CEF, OCSF or RFC 5424 syslog' \
'help:Print this message or the help of the given subcommand(s)' \
    )
    _describe -t commands 'rampart audit commands' commands "$@"
}
(( $+functions[_rampart__subcmd__audit__subcmd__export_commands] )) ||
_rampart__subcmd__audit__subcmd__export_commands() {
    local commands; commands=()
    _describe -t commands 'rampart audit export commands' commands "$@"
}
(( $+functions[_rampart__subcmd__audit__subcmd__help_commands] )) ||
_rampart__subcmd__audit__subcmd__help_commands() {
    local commands; commands=(
'verify:Verify an audit database (hash chain and signed checkpoints), or prove a JSON Lines export complete and unaltered' \
'export:Export events as JSON Lines (provable), CEF, OCSF or RFC 5424 syslog' \
'help:Print this message or the help of the given subcommand(s)' \
    )
    _describe -t commands 'rampart audit help commands' commands "$@"
}
(( $+functions[_rampart__subcmd__audit__subcmd__help__subcmd__export_commands] )) ||
_rampart__subcmd__audit__subcmd__help__subcmd__export_commands() {
    local commands; commands=()
    _describe -t commands 'rampart audit help export commands' commands "$@"
}
(( $+functions[_rampart__subcmd__audit__subcmd__help__subcmd__help_commands] )) ||
_rampart__subcmd__audit__subcmd__help__subcmd__help_commands() {
    local commands; commands=()
    _describe -t commands 'rampart audit help help commands' commands "$@"
}
(( $+functions[_rampart__subcmd__audit__subcmd__help__subcmd__verify_commands] )) ||
_rampart__subcmd__audit__subcmd__help__subcmd__verify_commands() {
    local commands; commands=()
    _describe -t commands 'rampart audit help verify commands' commands "$@"
}
(( $+functions[_rampart__subcmd__audit__subcmd__verify_commands] )) ||
_rampart__subcmd__audit__subcmd__verify_commands() {
    local commands; commands=()
    _describe -t commands 'rampart audit verify commands' commands "$@"
}
(( $+functions[_rampart__subcmd__completions_commands] )) ||
_rampart__subcmd__completions_commands() {
    local commands; commands=()
    _describe -t commands 'rampart completions commands' commands "$@"
}
(( $+functions[_rampart__subcmd__dev_commands] )) ||
_rampart__subcmd__dev_commands() {
    local commands; commands=()
    _describe -t commands 'rampart dev commands' commands "$@"
}
(( $+functions[_rampart__subcmd__enroll_commands] )) ||
_rampart__subcmd__enroll_commands() {
    local commands; commands=()
    _describe -t commands 'rampart enroll commands' commands "$@"
}
(( $+functions[_rampart__subcmd__help_commands] )) ||
_rampart__subcmd__help_commands() {
    local commands; commands=(
'enroll:Redeem an invite\: register TOTP (or a security key) and receive recovery codes' \
'login:Prove MFA and get a certificate for your SSH key' \
'status:Show who you are and how long your certificate lasts (exit 1 without a valid one)' \
'logout:End the session, delete the certificate and remove the key from ssh-agent' \
'ls:List the targets you may reach through the bastions, with your logins there' \
'ssh:Run ssh to LOGIN@TARGET through the bastion that serves it' \
'keys:Add, list and remove your security keys (WebAuthn / FIDO2)' \
'admin:Administer users, invites, revocations and host certificates' \
'audit:Work with the audit log' \
'sessions:List bastion sessions and replay their recordings (admin)' \
'policy:Check and try out a policy file' \
'completions:Print a shell completion script' \
'dev:Run a local CA for trying Rampart on one machine' \
'host:Helpers for production hosts\: KRL sync, sshd principals, install' \
'help:Print this message or the help of the given subcommand(s)' \
    )
    _describe -t commands 'rampart help commands' commands "$@"
}
(( $+functions[_rampart__subcmd__help__subcmd__admin_commands] )) ||
_rampart__subcmd__help__subcmd__admin_commands() {
    local commands; commands=(
'user:Manage users' \
'invite:Create a single-use enrolment invite for an existing user' \
'revoke:Revoke a certificate serial, all of a user'\''s certificates, or a key' \
'krl:Download the current KRL (OpenSSH binary format) for sshd'\''s \`RevokedKeys\`' \
'host-cert:Sign a host key with the host CA' \
'host-token:Create a single-use join token for a host'\''s first certificate (\`rampart host install --join-token=…\` on the host)' \
'host-tokens:List the host join tokens\: unused ones, and those used or expired in the last day (withdraw one with \`revoke --host-token ID\`)' \
'bastion-token:Create a single-use join token for a bastion (\`rampart-bastion join\`)' \
    )
    _describe -t commands 'rampart help admin commands' commands "$@"
}
(( $+functions[_rampart__subcmd__help__subcmd__admin__subcmd__bastion-token_commands] )) ||
_rampart__subcmd__help__subcmd__admin__subcmd__bastion-token_commands() {
    local commands; commands=()
    _describe -t commands 'rampart help admin bastion-token commands' commands "$@"
}
(( $+functions[_rampart__subcmd__help__subcmd__admin__subcmd__host-cert_commands] )) ||
_rampart__subcmd__help__subcmd__admin__subcmd__host-cert_commands() {
    local commands; commands=()
    _describe -t commands 'rampart help admin host-cert commands' commands "$@"
}
(( $+functions[_rampart__subcmd__help__subcmd__admin__subcmd__host-token_commands] )) ||
_rampart__subcmd__help__subcmd__admin__subcmd__host-token_commands() {
    local commands; commands=()
    _describe -t commands 'rampart help admin host-token commands' commands "$@"
}
(( $+functions[_rampart__subcmd__help__subcmd__admin__subcmd__host-tokens_commands] )) ||
_rampart__subcmd__help__subcmd__admin__subcmd__host-tokens_commands() {
    local commands; commands=()
    _describe -t commands 'rampart help admin host-tokens commands' commands "$@"
}
(( $+functions[_rampart__subcmd__help__subcmd__admin__subcmd__invite_commands] )) ||
_rampart__subcmd__help__subcmd__admin__subcmd__invite_commands() {
    local commands; commands=()
    _describe -t commands 'rampart help admin invite commands' commands "$@"
}
(( $+functions[_rampart__subcmd__help__subcmd__admin__subcmd__krl_commands] )) ||
_rampart__subcmd__help__subcmd__admin__subcmd__krl_commands() {
    local commands; commands=()
    _describe -t commands 'rampart help admin krl commands' commands "$@"
}
(( $+functions[_rampart__subcmd__help__subcmd__admin__subcmd__revoke_commands] )) ||
_rampart__subcmd__help__subcmd__admin__subcmd__revoke_commands() {
    local commands; commands=()
    _describe -t commands 'rampart help admin revoke commands' commands "$@"
}
(( $+functions[_rampart__subcmd__help__subcmd__admin__subcmd__user_commands] )) ||
_rampart__subcmd__help__subcmd__admin__subcmd__user_commands() {
    local commands; commands=(
'add:Create a user' \
'list:List users' \
'disable:Disable a user (ends their sessions)' \
'enable:Enable a disabled user' \
'groups:Replace a user'\''s groups' \
'link:Link a user to their account at an OIDC provider (its subject, \`sub\`), so that account can log in as the user; \`--unlink\` removes the link' \
'keys:List a user'\''s security keys, or remove one' \
    )
    _describe -t commands 'rampart help admin user commands' commands "$@"
}
(( $+functions[_rampart__subcmd__help__subcmd__admin__subcmd__user__subcmd__add_commands] )) ||
_rampart__subcmd__help__subcmd__admin__subcmd__user__subcmd__add_commands() {
    local commands; commands=()
    _describe -t commands 'rampart help admin user add commands' commands "$@"
}
(( $+functions[_rampart__subcmd__help__subcmd__admin__subcmd__user__subcmd__disable_commands] )) ||
_rampart__subcmd__help__subcmd__admin__subcmd__user__subcmd__disable_commands() {
    local commands; commands=()
    _describe -t commands 'rampart help admin user disable commands' commands "$@"
}
(( $+functions[_rampart__subcmd__help__subcmd__admin__subcmd__user__subcmd__enable_commands] )) ||
_rampart__subcmd__help__subcmd__admin__subcmd__user__subcmd__enable_commands() {
    local commands; commands=()
    _describe -t commands 'rampart help admin user enable commands' commands "$@"
}
(( $+functions[_rampart__subcmd__help__subcmd__admin__subcmd__user__subcmd__groups_commands] )) ||
_rampart__subcmd__help__subcmd__admin__subcmd__user__subcmd__groups_commands() {
    local commands; commands=()
    _describe -t commands 'rampart help admin user groups commands' commands "$@"
}
(( $+functions[_rampart__subcmd__help__subcmd__admin__subcmd__user__subcmd__keys_commands] )) ||
_rampart__subcmd__help__subcmd__admin__subcmd__user__subcmd__keys_commands() {
    local commands; commands=()
    _describe -t commands 'rampart help admin user keys commands' commands "$@"
}
(( $+functions[_rampart__subcmd__help__subcmd__admin__subcmd__user__subcmd__link_commands] )) ||
_rampart__subcmd__help__subcmd__admin__subcmd__user__subcmd__link_commands() {
    local commands; commands=()
    _describe -t commands 'rampart help admin user link commands' commands "$@"
}
(( $+functions[_rampart__subcmd__help__subcmd__admin__subcmd__user__subcmd__list_commands] )) ||
_rampart__subcmd__help__subcmd__admin__subcmd__user__subcmd__list_commands() {
    local commands; commands=()
    _describe -t commands 'rampart help admin user list commands' commands "$@"
}
(( $+functions[_rampart__subcmd__help__subcmd__audit_commands] )) ||
_rampart__subcmd__help__subcmd__audit_commands() {
    local commands; commands=(
'verify:Verify an audit database (hash chain and signed checkpoints), or prove a JSON Lines export complete and unaltered' \
'export:Export events as JSON Lines (provable), CEF, OCSF or RFC 5424 syslog' \
    )
    _describe -t commands 'rampart help audit commands' commands "$@"
}
(( $+functions[_rampart__subcmd__help__subcmd__audit__subcmd__export_commands] )) ||
_rampart__subcmd__help__subcmd__audit__subcmd__export_commands() {
    local commands; commands=()
    _describe -t commands 'rampart help audit export commands' commands "$@"
}
(( $+functions[_rampart__subcmd__help__subcmd__audit__subcmd__verify_commands] )) ||
_rampart__subcmd__help__subcmd__audit__subcmd__verify_commands() {
    local commands; commands=()
    _describe -t commands 'rampart help audit verify commands' commands "$@"
}
(( $+functions[_rampart__subcmd__help__subcmd__completions_commands] )) ||
_rampart__subcmd__help__subcmd__completions_commands() {
    local commands; commands=()
    _describe -t commands 'rampart help completions commands' commands "$@"
}
(( $+functions[_rampart__subcmd__help__subcmd__dev_commands] )) ||
_rampart__subcmd__help__subcmd__dev_commands() {
    local commands; commands=()
    _describe -t commands 'rampart help dev commands' commands "$@"
}
(( $+functions[_rampart__subcmd__help__subcmd__enroll_commands] )) ||
_rampart__subcmd__help__subcmd__enroll_commands() {
    local commands; commands=()
    _describe -t commands 'rampart help enroll commands' commands "$@"
}
(( $+functions[_rampart__subcmd__help__subcmd__help_commands] )) ||
_rampart__subcmd__help__subcmd__help_commands() {
    local commands; commands=()
    _describe -t commands 'rampart help help commands' commands "$@"
}
(( $+functions[_rampart__subcmd__help__subcmd__host_commands] )) ||
_rampart__subcmd__help__subcmd__host_commands() {
    local commands; commands=(
'krl-sync:Fetch the CA'\''s signed KRL, verify it, and install it atomically for \`RevokedKeys\`' \
'principals:For sshd'\''s AuthorizedPrincipalsCommand\: print the certificate principals the host policy accepts for an account' \
'install:Print (or write with --write) the sshd drop-in, CA key, host policy and timer' \
'renew-cert:Renew this host'\''s certificate from the CA before it expires, proving the host holds the current one and its key (run daily by rampart-host-cert.timer); the first one comes from \`rampart admin host-cert\`' \
    )
    _describe -t commands 'rampart help host commands' commands "$@"
}
(( $+functions[_rampart__subcmd__help__subcmd__host__subcmd__install_commands] )) ||
_rampart__subcmd__help__subcmd__host__subcmd__install_commands() {
    local commands; commands=()
    _describe -t commands 'rampart help host install commands' commands "$@"
}
(( $+functions[_rampart__subcmd__help__subcmd__host__subcmd__krl-sync_commands] )) ||
_rampart__subcmd__help__subcmd__host__subcmd__krl-sync_commands() {
    local commands; commands=()
    _describe -t commands 'rampart help host krl-sync commands' commands "$@"
}
(( $+functions[_rampart__subcmd__help__subcmd__host__subcmd__principals_commands] )) ||
_rampart__subcmd__help__subcmd__host__subcmd__principals_commands() {
    local commands; commands=()
    _describe -t commands 'rampart help host principals commands' commands "$@"
}
(( $+functions[_rampart__subcmd__help__subcmd__host__subcmd__renew-cert_commands] )) ||
_rampart__subcmd__help__subcmd__host__subcmd__renew-cert_commands() {
    local commands; commands=()
    _describe -t commands 'rampart help host renew-cert commands' commands "$@"
}
(( $+functions[_rampart__subcmd__help__subcmd__keys_commands] )) ||
_rampart__subcmd__help__subcmd__keys_commands() {
    local commands; commands=(
'add:Enrol another security key for your account (needs a login)' \
'list:List your security keys' \
'remove:Remove one of your security keys by ID (see \`rampart keys list\`)' \
    )
    _describe -t commands 'rampart help keys commands' commands "$@"
}
(( $+functions[_rampart__subcmd__help__subcmd__keys__subcmd__add_commands] )) ||
_rampart__subcmd__help__subcmd__keys__subcmd__add_commands() {
    local commands; commands=()
    _describe -t commands 'rampart help keys add commands' commands "$@"
}
(( $+functions[_rampart__subcmd__help__subcmd__keys__subcmd__list_commands] )) ||
_rampart__subcmd__help__subcmd__keys__subcmd__list_commands() {
    local commands; commands=()
    _describe -t commands 'rampart help keys list commands' commands "$@"
}
(( $+functions[_rampart__subcmd__help__subcmd__keys__subcmd__remove_commands] )) ||
_rampart__subcmd__help__subcmd__keys__subcmd__remove_commands() {
    local commands; commands=()
    _describe -t commands 'rampart help keys remove commands' commands "$@"
}
(( $+functions[_rampart__subcmd__help__subcmd__login_commands] )) ||
_rampart__subcmd__help__subcmd__login_commands() {
    local commands; commands=()
    _describe -t commands 'rampart help login commands' commands "$@"
}
(( $+functions[_rampart__subcmd__help__subcmd__logout_commands] )) ||
_rampart__subcmd__help__subcmd__logout_commands() {
    local commands; commands=()
    _describe -t commands 'rampart help logout commands' commands "$@"
}
(( $+functions[_rampart__subcmd__help__subcmd__ls_commands] )) ||
_rampart__subcmd__help__subcmd__ls_commands() {
    local commands; commands=()
    _describe -t commands 'rampart help ls commands' commands "$@"
}
(( $+functions[_rampart__subcmd__help__subcmd__policy_commands] )) ||
_rampart__subcmd__help__subcmd__policy_commands() {
    local commands; commands=(
'check:Parse and lint a policy file' \
'test:Evaluate one certificate request against a policy file' \
    )
    _describe -t commands 'rampart help policy commands' commands "$@"
}
(( $+functions[_rampart__subcmd__help__subcmd__policy__subcmd__check_commands] )) ||
_rampart__subcmd__help__subcmd__policy__subcmd__check_commands() {
    local commands; commands=()
    _describe -t commands 'rampart help policy check commands' commands "$@"
}
(( $+functions[_rampart__subcmd__help__subcmd__policy__subcmd__test_commands] )) ||
_rampart__subcmd__help__subcmd__policy__subcmd__test_commands() {
    local commands; commands=()
    _describe -t commands 'rampart help policy test commands' commands "$@"
}
(( $+functions[_rampart__subcmd__help__subcmd__sessions_commands] )) ||
_rampart__subcmd__help__subcmd__sessions_commands() {
    local commands; commands=(
'list:List bastion sessions, newest first (admin)' \
'play:Replay a session'\''s recording in this terminal (admin)' \
    )
    _describe -t commands 'rampart help sessions commands' commands "$@"
}
(( $+functions[_rampart__subcmd__help__subcmd__sessions__subcmd__list_commands] )) ||
_rampart__subcmd__help__subcmd__sessions__subcmd__list_commands() {
    local commands; commands=()
    _describe -t commands 'rampart help sessions list commands' commands "$@"
}
(( $+functions[_rampart__subcmd__help__subcmd__sessions__subcmd__play_commands] )) ||
_rampart__subcmd__help__subcmd__sessions__subcmd__play_commands() {
    local commands; commands=()
    _describe -t commands 'rampart help sessions play commands' commands "$@"
}
(( $+functions[_rampart__subcmd__help__subcmd__ssh_commands] )) ||
_rampart__subcmd__help__subcmd__ssh_commands() {
    local commands; commands=()
    _describe -t commands 'rampart help ssh commands' commands "$@"
}
(( $+functions[_rampart__subcmd__help__subcmd__status_commands] )) ||
_rampart__subcmd__help__subcmd__status_commands() {
    local commands; commands=()
    _describe -t commands 'rampart help status commands' commands "$@"
}
(( $+functions[_rampart__subcmd__host_commands] )) ||
_rampart__subcmd__host_commands() {
    local commands; commands=(
'krl-sync:Fetch the CA'\''s signed KRL, verify it, and install it atomically for \`RevokedKeys\`' \
'principals:For sshd'\''s AuthorizedPrincipalsCommand\: print the certificate principals the host policy accepts for an account' \
'install:Print (or write with --write) the sshd drop-in, CA key, host policy and timer' \
'renew-cert:Renew this host'\''s certificate from the CA before it expires, proving the host holds the current one and its key (run daily by rampart-host-cert.timer); the first one comes from \`rampart admin host-cert\`' \
'help:Print this message or the help of the given subcommand(s)' \
    )
    _describe -t commands 'rampart host commands' commands "$@"
}
(( $+functions[_rampart__subcmd__host__subcmd__help_commands] )) ||
_rampart__subcmd__host__subcmd__help_commands() {
    local commands; commands=(
'krl-sync:Fetch the CA'\''s signed KRL, verify it, and install it atomically for \`RevokedKeys\`' \
'principals:For sshd'\''s AuthorizedPrincipalsCommand\: print the certificate principals the host policy accepts for an account' \
'install:Print (or write with --write) the sshd drop-in, CA key, host policy and timer' \
'renew-cert:Renew this host'\''s certificate from the CA before it expires, proving the host holds the current one and its key (run daily by rampart-host-cert.timer); the first one comes from \`rampart admin host-cert\`' \
'help:Print this message or the help of the given subcommand(s)' \
    )
    _describe -t commands 'rampart host help commands' commands "$@"
}
(( $+functions[_rampart__subcmd__host__subcmd__help__subcmd__help_commands] )) ||
_rampart__subcmd__host__subcmd__help__subcmd__help_commands() {
    local commands; commands=()
    _describe -t commands 'rampart host help help commands' commands "$@"
}
(( $+functions[_rampart__subcmd__host__subcmd__help__subcmd__install_commands] )) ||
_rampart__subcmd__host__subcmd__help__subcmd__install_commands() {
    local commands; commands=()
    _describe -t commands 'rampart host help install commands' commands "$@"
}
(( $+functions[_rampart__subcmd__host__subcmd__help__subcmd__krl-sync_commands] )) ||
_rampart__subcmd__host__subcmd__help__subcmd__krl-sync_commands() {
    local commands; commands=()
    _describe -t commands 'rampart host help krl-sync commands' commands "$@"
}
(( $+functions[_rampart__subcmd__host__subcmd__help__subcmd__principals_commands] )) ||
_rampart__subcmd__host__subcmd__help__subcmd__principals_commands() {
    local commands; commands=()
    _describe -t commands 'rampart host help principals commands' commands "$@"
}
(( $+functions[_rampart__subcmd__host__subcmd__help__subcmd__renew-cert_commands] )) ||
_rampart__subcmd__host__subcmd__help__subcmd__renew-cert_commands() {
    local commands; commands=()
    _describe -t commands 'rampart host help renew-cert commands' commands "$@"
}
(( $+functions[_rampart__subcmd__host__subcmd__install_commands] )) ||
_rampart__subcmd__host__subcmd__install_commands() {
    local commands; commands=()
    _describe -t commands 'rampart host install commands' commands "$@"
}
(( $+functions[_rampart__subcmd__host__subcmd__krl-sync_commands] )) ||
_rampart__subcmd__host__subcmd__krl-sync_commands() {
    local commands; commands=()
    _describe -t commands 'rampart host krl-sync commands' commands "$@"
}
(( $+functions[_rampart__subcmd__host__subcmd__principals_commands] )) ||
_rampart__subcmd__host__subcmd__principals_commands() {
    local commands; commands=()
    _describe -t commands 'rampart host principals commands' commands "$@"
}
(( $+functions[_rampart__subcmd__host__subcmd__renew-cert_commands] )) ||
_rampart__subcmd__host__subcmd__renew-cert_commands() {
    local commands; commands=()
    _describe -t commands 'rampart host renew-cert commands' commands "$@"
}
(( $+functions[_rampart__subcmd__keys_commands] )) ||
_rampart__subcmd__keys_commands() {
    local commands; commands=(
'add:Enrol another security key for your account (needs a login)' \
'list:List your security keys' \
'remove:Remove one of your security keys by ID (see \`rampart keys list\`)' \
'help:Print this message or the help of the given subcommand(s)' \
    )
    _describe -t commands 'rampart keys commands' commands "$@"
}
(( $+functions[_rampart__subcmd__keys__subcmd__add_commands] )) ||
_rampart__subcmd__keys__subcmd__add_commands() {
    local commands; commands=()
    _describe -t commands 'rampart keys add commands' commands "$@"
}
(( $+functions[_rampart__subcmd__keys__subcmd__help_commands] )) ||
_rampart__subcmd__keys__subcmd__help_commands() {
    local commands; commands=(
'add:Enrol another security key for your account (needs a login)' \
'list:List your security keys' \
'remove:Remove one of your security keys by ID (see \`rampart keys list\`)' \
'help:Print this message or the help of the given subcommand(s)' \
    )
    _describe -t commands 'rampart keys help commands' commands "$@"
}
(( $+functions[_rampart__subcmd__keys__subcmd__help__subcmd__add_commands] )) ||
_rampart__subcmd__keys__subcmd__help__subcmd__add_commands() {
    local commands; commands=()
    _describe -t commands 'rampart keys help add commands' commands "$@"
}
(( $+functions[_rampart__subcmd__keys__subcmd__help__subcmd__help_commands] )) ||
_rampart__subcmd__keys__subcmd__help__subcmd__help_commands() {
    local commands; commands=()
    _describe -t commands 'rampart keys help help commands' commands "$@"
}
(( $+functions[_rampart__subcmd__keys__subcmd__help__subcmd__list_commands] )) ||
_rampart__subcmd__keys__subcmd__help__subcmd__list_commands() {
    local commands; commands=()
    _describe -t commands 'rampart keys help list commands' commands "$@"
}
(( $+functions[_rampart__subcmd__keys__subcmd__help__subcmd__remove_commands] )) ||
_rampart__subcmd__keys__subcmd__help__subcmd__remove_commands() {
    local commands; commands=()
    _describe -t commands 'rampart keys help remove commands' commands "$@"
}
(( $+functions[_rampart__subcmd__keys__subcmd__list_commands] )) ||
_rampart__subcmd__keys__subcmd__list_commands() {
    local commands; commands=()
    _describe -t commands 'rampart keys list commands' commands "$@"
}
(( $+functions[_rampart__subcmd__keys__subcmd__remove_commands] )) ||
_rampart__subcmd__keys__subcmd__remove_commands() {
    local commands; commands=()
    _describe -t commands 'rampart keys remove commands' commands "$@"
}
(( $+functions[_rampart__subcmd__login_commands] )) ||
_rampart__subcmd__login_commands() {
    local commands; commands=()
    _describe -t commands 'rampart login commands' commands "$@"
}
(( $+functions[_rampart__subcmd__logout_commands] )) ||
_rampart__subcmd__logout_commands() {
    local commands; commands=()
    _describe -t commands 'rampart logout commands' commands "$@"
}
(( $+functions[_rampart__subcmd__ls_commands] )) ||
_rampart__subcmd__ls_commands() {
    local commands; commands=()
    _describe -t commands 'rampart ls commands' commands "$@"
}
(( $+functions[_rampart__subcmd__policy_commands] )) ||
_rampart__subcmd__policy_commands() {
    local commands; commands=(
'check:Parse and lint a policy file' \
'test:Evaluate one certificate request against a policy file' \
'help:Print this message or the help of the given subcommand(s)' \
    )
    _describe -t commands 'rampart policy commands' commands "$@"
}
(( $+functions[_rampart__subcmd__policy__subcmd__check_commands] )) ||
_rampart__subcmd__policy__subcmd__check_commands() {
    local commands; commands=()
    _describe -t commands 'rampart policy check commands' commands "$@"
}
(( $+functions[_rampart__subcmd__policy__subcmd__help_commands] )) ||
_rampart__subcmd__policy__subcmd__help_commands() {
    local commands; commands=(
'check:Parse and lint a policy file' \
'test:Evaluate one certificate request against a policy file' \
'help:Print this message or the help of the given subcommand(s)' \
    )
    _describe -t commands 'rampart policy help commands' commands "$@"
}
(( $+functions[_rampart__subcmd__policy__subcmd__help__subcmd__check_commands] )) ||
_rampart__subcmd__policy__subcmd__help__subcmd__check_commands() {
    local commands; commands=()
    _describe -t commands 'rampart policy help check commands' commands "$@"
}
(( $+functions[_rampart__subcmd__policy__subcmd__help__subcmd__help_commands] )) ||
_rampart__subcmd__policy__subcmd__help__subcmd__help_commands() {
    local commands; commands=()
    _describe -t commands 'rampart policy help help commands' commands "$@"
}
(( $+functions[_rampart__subcmd__policy__subcmd__help__subcmd__test_commands] )) ||
_rampart__subcmd__policy__subcmd__help__subcmd__test_commands() {
    local commands; commands=()
    _describe -t commands 'rampart policy help test commands' commands "$@"
}
(( $+functions[_rampart__subcmd__policy__subcmd__test_commands] )) ||
_rampart__subcmd__policy__subcmd__test_commands() {
    local commands; commands=()
    _describe -t commands 'rampart policy test commands' commands "$@"
}
(( $+functions[_rampart__subcmd__sessions_commands] )) ||
_rampart__subcmd__sessions_commands() {
    local commands; commands=(
'list:List bastion sessions, newest first (admin)' \
'play:Replay a session'\''s recording in this terminal (admin)' \
'help:Print this message or the help of the given subcommand(s)' \
    )
    _describe -t commands 'rampart sessions commands' commands "$@"
}
(( $+functions[_rampart__subcmd__sessions__subcmd__help_commands] )) ||
_rampart__subcmd__sessions__subcmd__help_commands() {
    local commands; commands=(
'list:List bastion sessions, newest first (admin)' \
'play:Replay a session'\''s recording in this terminal (admin)' \
'help:Print this message or the help of the given subcommand(s)' \
    )
    _describe -t commands 'rampart sessions help commands' commands "$@"
}
(( $+functions[_rampart__subcmd__sessions__subcmd__help__subcmd__help_commands] )) ||
_rampart__subcmd__sessions__subcmd__help__subcmd__help_commands() {
    local commands; commands=()
    _describe -t commands 'rampart sessions help help commands' commands "$@"
}
(( $+functions[_rampart__subcmd__sessions__subcmd__help__subcmd__list_commands] )) ||
_rampart__subcmd__sessions__subcmd__help__subcmd__list_commands() {
    local commands; commands=()
    _describe -t commands 'rampart sessions help list commands' commands "$@"
}
(( $+functions[_rampart__subcmd__sessions__subcmd__help__subcmd__play_commands] )) ||
_rampart__subcmd__sessions__subcmd__help__subcmd__play_commands() {
    local commands; commands=()
    _describe -t commands 'rampart sessions help play commands' commands "$@"
}
(( $+functions[_rampart__subcmd__sessions__subcmd__list_commands] )) ||
_rampart__subcmd__sessions__subcmd__list_commands() {
    local commands; commands=()
    _describe -t commands 'rampart sessions list commands' commands "$@"
}
(( $+functions[_rampart__subcmd__sessions__subcmd__play_commands] )) ||
_rampart__subcmd__sessions__subcmd__play_commands() {
    local commands; commands=()
    _describe -t commands 'rampart sessions play commands' commands "$@"
}
(( $+functions[_rampart__subcmd__ssh_commands] )) ||
_rampart__subcmd__ssh_commands() {
    local commands; commands=()
    _describe -t commands 'rampart ssh commands' commands "$@"
}
(( $+functions[_rampart__subcmd__status_commands] )) ||
_rampart__subcmd__status_commands() {
    local commands; commands=()
    _describe -t commands 'rampart status commands' commands "$@"
}

if [ "$funcstack[1]" = "_rampart" ]; then
    _rampart "$@"
else
    compdef _rampart rampart
fi
