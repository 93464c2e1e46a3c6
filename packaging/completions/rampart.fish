# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_rampart_global_optspecs
    string join \n home= h/help V/version
end

function __fish_rampart_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_rampart_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_rampart_using_subcommand
    set -l cmd (__fish_rampart_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c rampart -n "__fish_rampart_needs_command" -l home -d 'State directory (config, key, certificate, session)' -r -F
complete -c rampart -n "__fish_rampart_needs_command" -s h -l help -d 'Print help'
complete -c rampart -n "__fish_rampart_needs_command" -s V -l version -d 'Print version'
complete -c rampart -n "__fish_rampart_needs_command" -f -a "enroll" -d 'Redeem an invite: register TOTP (or a security key) and receive recovery codes'
complete -c rampart -n "__fish_rampart_needs_command" -f -a "login" -d 'Prove MFA and get a certificate for your SSH key'
complete -c rampart -n "__fish_rampart_needs_command" -f -a "status" -d 'Show who you are and how long your certificate lasts (exit 1 without a valid one)'
complete -c rampart -n "__fish_rampart_needs_command" -f -a "logout" -d 'End the session, delete the certificate and remove the key from ssh-agent'
complete -c rampart -n "__fish_rampart_needs_command" -f -a "ls" -d 'List the targets you may reach through the bastions, with your logins there'
complete -c rampart -n "__fish_rampart_needs_command" -f -a "ssh" -d 'Run ssh to LOGIN@TARGET through the bastion that serves it'
complete -c rampart -n "__fish_rampart_needs_command" -f -a "keys" -d 'Add, list and remove your security keys (WebAuthn / FIDO2)'
complete -c rampart -n "__fish_rampart_needs_command" -f -a "admin" -d 'Administer users, invites, revocations and host certificates'
complete -c rampart -n "__fish_rampart_needs_command" -f -a "audit" -d 'Work with the audit log'
complete -c rampart -n "__fish_rampart_needs_command" -f -a "sessions" -d 'List bastion sessions and replay their recordings (admin)'
complete -c rampart -n "__fish_rampart_needs_command" -f -a "policy" -d 'Check and try out a policy file'
complete -c rampart -n "__fish_rampart_needs_command" -f -a "completions" -d 'Print a shell completion script'
complete -c rampart -n "__fish_rampart_needs_command" -f -a "dev" -d 'Run a local CA for trying Rampart on one machine'
complete -c rampart -n "__fish_rampart_needs_command" -f -a "host" -d 'Helpers for production hosts: KRL sync, sshd principals, install'
complete -c rampart -n "__fish_rampart_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c rampart -n "__fish_rampart_using_subcommand enroll" -l ca -d 'CA URL, e.g. https://ca.example.com:8443; several CAs sharing one database: comma-separated, tried in turn when one cannot be reached' -r
complete -c rampart -n "__fish_rampart_using_subcommand enroll" -l invite -d 'The invite code your admin gave you' -r
complete -c rampart -n "__fish_rampart_using_subcommand enroll" -l ca-fingerprint -d 'SHA-256 fingerprint of the CA\'s TLS certificate (printed by `rampart-ca init`)' -r
complete -c rampart -n "__fish_rampart_using_subcommand enroll" -l key-name -d 'A name for the security key, e.g. yubikey-blue' -r
complete -c rampart -n "__fish_rampart_using_subcommand enroll" -l oidc -d 'Redeem the invite by logging in at this identity provider (OpenID Connect, in a browser): links your account there to the invited user, then logs you in and writes the certificate, like `rampart login`' -r
complete -c rampart -n "__fish_rampart_using_subcommand enroll" -l home -d 'State directory (config, key, certificate, session)' -r -F
complete -c rampart -n "__fish_rampart_using_subcommand enroll" -l code-stdin -d 'Read the TOTP code from standard input instead of prompting'
complete -c rampart -n "__fish_rampart_using_subcommand enroll" -l webauthn -d 'Enrol a security key in a browser (WebAuthn) instead of TOTP'
complete -c rampart -n "__fish_rampart_using_subcommand enroll" -l fido2 -d 'Enrol a USB security key from this terminal (CTAP2) instead of TOTP'
complete -c rampart -n "__fish_rampart_using_subcommand enroll" -l device -d 'With --oidc: use the device authorisation grant (a code to type on another device\'s browser), for terminals without one'
complete -c rampart -n "__fish_rampart_using_subcommand enroll" -l no-browser -d 'With --webauthn or --oidc: print the URL instead of opening a browser'
complete -c rampart -n "__fish_rampart_using_subcommand enroll" -s h -l help -d 'Print help'
complete -c rampart -n "__fish_rampart_using_subcommand enroll" -s V -l version -d 'Print version'
complete -c rampart -n "__fish_rampart_using_subcommand login" -l ca -d 'CA URL (default: the one saved by `enroll`)' -r
complete -c rampart -n "__fish_rampart_using_subcommand login" -l ca-fingerprint -d 'CA TLS certificate fingerprint (default: the saved one)' -r
complete -c rampart -n "__fish_rampart_using_subcommand login" -l user -d 'Rampart user name (default: the saved one)' -r
complete -c rampart -n "__fish_rampart_using_subcommand login" -l ttl -d 'Requested certificate lifetime (policy clamps it), e.g. 1h' -r
complete -c rampart -n "__fish_rampart_using_subcommand login" -l agent-key -d 'Certify this ssh-agent key (by `SHA256:` fingerprint) instead of the file key' -r
complete -c rampart -n "__fish_rampart_using_subcommand login" -l key -d 'Where the key lives: `file` (the file key, created if missing) or `piv` (YubiKey PIV slot 9a: generated there once, sent with its attestation so that roles needing a hardware-bound key can be granted)' -r -f -a "file\t'The file key in the state directory (or `--agent-key`)'
piv\t'The key in YubiKey PIV slot 9a, with its attestation'"
complete -c rampart -n "__fish_rampart_using_subcommand login" -l mfa -d 'The factor: a TOTP code (`--recovery` for a recovery code), a login at the identity provider named by `--provider` (`oidc`, in a browser), a security key approved in a browser (`webauthn`), or a USB security key used from this terminal (`fido2`)' -r -f -a "totp\t'A TOTP (or, with `--recovery`, recovery) code'
oidc\t'An OpenID Connect login at an identity provider'
webauthn\t'A security key, approved on a page the CA serves (opened in a browser)'
fido2\t'A USB security key, used directly from this terminal (CTAP2)'"
complete -c rampart -n "__fish_rampart_using_subcommand login" -l provider -d 'Identity provider for `--mfa oidc`, as named in the CA\'s config' -r
complete -c rampart -n "__fish_rampart_using_subcommand login" -l ssh-host -d 'Also offer the certificate to hosts matching this ssh_config `Host` pattern (e.g. `db-*` or `*.prod.example.com`), besides the CA\'s bastions. Repeatable; the list is remembered and replaces the saved one' -r
complete -c rampart -n "__fish_rampart_using_subcommand login" -l home -d 'State directory (config, key, certificate, session)' -r -F
complete -c rampart -n "__fish_rampart_using_subcommand login" -l code-stdin -d 'Read the code from standard input instead of prompting'
complete -c rampart -n "__fish_rampart_using_subcommand login" -l recovery -d 'Use a recovery code instead of a TOTP code'
complete -c rampart -n "__fish_rampart_using_subcommand login" -l no-browser -d 'With `--mfa oidc` or `webauthn`: print the URL instead of opening a browser'
complete -c rampart -n "__fish_rampart_using_subcommand login" -l device -d 'With `--mfa oidc`: use the device authorisation grant (a code to type on another device\'s browser), for terminals without one'
complete -c rampart -n "__fish_rampart_using_subcommand login" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c rampart -n "__fish_rampart_using_subcommand login" -s V -l version -d 'Print version'
complete -c rampart -n "__fish_rampart_using_subcommand status" -l home -d 'State directory (config, key, certificate, session)' -r -F
complete -c rampart -n "__fish_rampart_using_subcommand status" -l json -d 'One JSON object instead of the text (the exit status is the same)'
complete -c rampart -n "__fish_rampart_using_subcommand status" -s h -l help -d 'Print help'
complete -c rampart -n "__fish_rampart_using_subcommand status" -s V -l version -d 'Print version'
complete -c rampart -n "__fish_rampart_using_subcommand logout" -l home -d 'State directory (config, key, certificate, session)' -r -F
complete -c rampart -n "__fish_rampart_using_subcommand logout" -s h -l help -d 'Print help'
complete -c rampart -n "__fish_rampart_using_subcommand logout" -s V -l version -d 'Print version'
complete -c rampart -n "__fish_rampart_using_subcommand ls" -l home -d 'State directory (config, key, certificate, session)' -r -F
complete -c rampart -n "__fish_rampart_using_subcommand ls" -l json -d 'One JSON object instead of the table (fields in cli/README.md)'
complete -c rampart -n "__fish_rampart_using_subcommand ls" -s h -l help -d 'Print help'
complete -c rampart -n "__fish_rampart_using_subcommand ls" -s V -l version -d 'Print version'
complete -c rampart -n "__fish_rampart_using_subcommand ssh" -l home -d 'State directory (config, key, certificate, session)' -r -F
complete -c rampart -n "__fish_rampart_using_subcommand ssh" -s h -l help -d 'Print help'
complete -c rampart -n "__fish_rampart_using_subcommand ssh" -s V -l version -d 'Print version'
complete -c rampart -n "__fish_rampart_using_subcommand keys; and not __fish_seen_subcommand_from add list remove help" -l home -d 'State directory (config, key, certificate, session)' -r -F
complete -c rampart -n "__fish_rampart_using_subcommand keys; and not __fish_seen_subcommand_from add list remove help" -s h -l help -d 'Print help'
complete -c rampart -n "__fish_rampart_using_subcommand keys; and not __fish_seen_subcommand_from add list remove help" -s V -l version -d 'Print version'
complete -c rampart -n "__fish_rampart_using_subcommand keys; and not __fish_seen_subcommand_from add list remove help" -f -a "add" -d 'Enrol another security key for your account (needs a login)'
complete -c rampart -n "__fish_rampart_using_subcommand keys; and not __fish_seen_subcommand_from add list remove help" -f -a "list" -d 'List your security keys'
complete -c rampart -n "__fish_rampart_using_subcommand keys; and not __fish_seen_subcommand_from add list remove help" -f -a "remove" -d 'Remove one of your security keys by ID (see `rampart keys list`)'
complete -c rampart -n "__fish_rampart_using_subcommand keys; and not __fish_seen_subcommand_from add list remove help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c rampart -n "__fish_rampart_using_subcommand keys; and __fish_seen_subcommand_from add" -l replaces -d 'The ID of one of your keys that this one replaces (it is removed once the new key is enrolled). After a recovery-code login this is the only way to add a key' -r
complete -c rampart -n "__fish_rampart_using_subcommand keys; and __fish_seen_subcommand_from add" -l home -d 'State directory (config, key, certificate, session)' -r -F
complete -c rampart -n "__fish_rampart_using_subcommand keys; and __fish_seen_subcommand_from add" -l fido2 -d 'Use a USB key from this terminal (CTAP2) instead of a browser page'
complete -c rampart -n "__fish_rampart_using_subcommand keys; and __fish_seen_subcommand_from add" -l no-browser -d 'Print the page\'s URL instead of opening a browser'
complete -c rampart -n "__fish_rampart_using_subcommand keys; and __fish_seen_subcommand_from add" -s h -l help -d 'Print help'
complete -c rampart -n "__fish_rampart_using_subcommand keys; and __fish_seen_subcommand_from add" -s V -l version -d 'Print version'
complete -c rampart -n "__fish_rampart_using_subcommand keys; and __fish_seen_subcommand_from list" -l home -d 'State directory (config, key, certificate, session)' -r -F
complete -c rampart -n "__fish_rampart_using_subcommand keys; and __fish_seen_subcommand_from list" -s h -l help -d 'Print help'
complete -c rampart -n "__fish_rampart_using_subcommand keys; and __fish_seen_subcommand_from list" -s V -l version -d 'Print version'
complete -c rampart -n "__fish_rampart_using_subcommand keys; and __fish_seen_subcommand_from remove" -l home -d 'State directory (config, key, certificate, session)' -r -F
complete -c rampart -n "__fish_rampart_using_subcommand keys; and __fish_seen_subcommand_from remove" -s h -l help -d 'Print help'
complete -c rampart -n "__fish_rampart_using_subcommand keys; and __fish_seen_subcommand_from remove" -s V -l version -d 'Print version'
complete -c rampart -n "__fish_rampart_using_subcommand keys; and __fish_seen_subcommand_from help" -f -a "add" -d 'Enrol another security key for your account (needs a login)'
complete -c rampart -n "__fish_rampart_using_subcommand keys; and __fish_seen_subcommand_from help" -f -a "list" -d 'List your security keys'
complete -c rampart -n "__fish_rampart_using_subcommand keys; and __fish_seen_subcommand_from help" -f -a "remove" -d 'Remove one of your security keys by ID (see `rampart keys list`)'
complete -c rampart -n "__fish_rampart_using_subcommand keys; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c rampart -n "__fish_rampart_using_subcommand admin; and not __fish_seen_subcommand_from user invite revoke krl host-cert host-token host-tokens bastion-token help" -l home -d 'State directory (config, key, certificate, session)' -r -F
complete -c rampart -n "__fish_rampart_using_subcommand admin; and not __fish_seen_subcommand_from user invite revoke krl host-cert host-token host-tokens bastion-token help" -s h -l help -d 'Print help'
complete -c rampart -n "__fish_rampart_using_subcommand admin; and not __fish_seen_subcommand_from user invite revoke krl host-cert host-token host-tokens bastion-token help" -s V -l version -d 'Print version'
complete -c rampart -n "__fish_rampart_using_subcommand admin; and not __fish_seen_subcommand_from user invite revoke krl host-cert host-token host-tokens bastion-token help" -f -a "user" -d 'Manage users'
complete -c rampart -n "__fish_rampart_using_subcommand admin; and not __fish_seen_subcommand_from user invite revoke krl host-cert host-token host-tokens bastion-token help" -f -a "invite" -d 'Create a single-use enrolment invite for an existing user'
complete -c rampart -n "__fish_rampart_using_subcommand admin; and not __fish_seen_subcommand_from user invite revoke krl host-cert host-token host-tokens bastion-token help" -f -a "revoke" -d 'Revoke a certificate serial, all of a user\'s certificates, or a key'
complete -c rampart -n "__fish_rampart_using_subcommand admin; and not __fish_seen_subcommand_from user invite revoke krl host-cert host-token host-tokens bastion-token help" -f -a "krl" -d 'Download the current KRL (OpenSSH binary format) for sshd\'s `RevokedKeys`'
complete -c rampart -n "__fish_rampart_using_subcommand admin; and not __fish_seen_subcommand_from user invite revoke krl host-cert host-token host-tokens bastion-token help" -f -a "host-cert" -d 'Sign a host key with the host CA'
complete -c rampart -n "__fish_rampart_using_subcommand admin; and not __fish_seen_subcommand_from user invite revoke krl host-cert host-token host-tokens bastion-token help" -f -a "host-token" -d 'Create a single-use join token for a host\'s first certificate (`rampart host install --join-token=…` on the host)'
complete -c rampart -n "__fish_rampart_using_subcommand admin; and not __fish_seen_subcommand_from user invite revoke krl host-cert host-token host-tokens bastion-token help" -f -a "host-tokens" -d 'List the host join tokens: unused ones, and those used or expired in the last day (withdraw one with `revoke --host-token ID`)'
complete -c rampart -n "__fish_rampart_using_subcommand admin; and not __fish_seen_subcommand_from user invite revoke krl host-cert host-token host-tokens bastion-token help" -f -a "bastion-token" -d 'Create a single-use join token for a bastion (`rampart-bastion join`)'
complete -c rampart -n "__fish_rampart_using_subcommand admin; and not __fish_seen_subcommand_from user invite revoke krl host-cert host-token host-tokens bastion-token help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c rampart -n "__fish_rampart_using_subcommand admin; and __fish_seen_subcommand_from user" -l home -d 'State directory (config, key, certificate, session)' -r -F
complete -c rampart -n "__fish_rampart_using_subcommand admin; and __fish_seen_subcommand_from user" -s h -l help -d 'Print help'
complete -c rampart -n "__fish_rampart_using_subcommand admin; and __fish_seen_subcommand_from user" -s V -l version -d 'Print version'
complete -c rampart -n "__fish_rampart_using_subcommand admin; and __fish_seen_subcommand_from user" -f -a "add" -d 'Create a user'
complete -c rampart -n "__fish_rampart_using_subcommand admin; and __fish_seen_subcommand_from user" -f -a "list" -d 'List users'
complete -c rampart -n "__fish_rampart_using_subcommand admin; and __fish_seen_subcommand_from user" -f -a "disable" -d 'Disable a user (ends their sessions)'
complete -c rampart -n "__fish_rampart_using_subcommand admin; and __fish_seen_subcommand_from user" -f -a "enable" -d 'Enable a disabled user'
complete -c rampart -n "__fish_rampart_using_subcommand admin; and __fish_seen_subcommand_from user" -f -a "groups" -d 'Replace a user\'s groups'
complete -c rampart -n "__fish_rampart_using_subcommand admin; and __fish_seen_subcommand_from user" -f -a "link" -d 'Link a user to their account at an OIDC provider (its subject, `sub`), so that account can log in as the user; `--unlink` removes the link'
complete -c rampart -n "__fish_rampart_using_subcommand admin; and __fish_seen_subcommand_from user" -f -a "keys" -d 'List a user\'s security keys, or remove one'
complete -c rampart -n "__fish_rampart_using_subcommand admin; and __fish_seen_subcommand_from user" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c rampart -n "__fish_rampart_using_subcommand admin; and __fish_seen_subcommand_from invite" -l ttl -d 'Invite lifetime' -r
complete -c rampart -n "__fish_rampart_using_subcommand admin; and __fish_seen_subcommand_from invite" -l oidc -d 'Print the `rampart enroll` line that redeems the invite with a login at this identity provider, linking the user\'s account there' -r
complete -c rampart -n "__fish_rampart_using_subcommand admin; and __fish_seen_subcommand_from invite" -l home -d 'State directory (config, key, certificate, session)' -r -F
complete -c rampart -n "__fish_rampart_using_subcommand admin; and __fish_seen_subcommand_from invite" -s h -l help -d 'Print help'
complete -c rampart -n "__fish_rampart_using_subcommand admin; and __fish_seen_subcommand_from invite" -s V -l version -d 'Print version'
complete -c rampart -n "__fish_rampart_using_subcommand admin; and __fish_seen_subcommand_from revoke" -l serial -d 'Certificate serial number' -r
complete -c rampart -n "__fish_rampart_using_subcommand admin; and __fish_seen_subcommand_from revoke" -l user -d 'Every certificate of this user (the user is disabled too)' -r
complete -c rampart -n "__fish_rampart_using_subcommand admin; and __fish_seen_subcommand_from revoke" -l key -d 'A public key by fingerprint, and every certificate for it' -r
complete -c rampart -n "__fish_rampart_using_subcommand admin; and __fish_seen_subcommand_from revoke" -l bastion -d 'A joined bastion: its CA credential stops working' -r
complete -c rampart -n "__fish_rampart_using_subcommand admin; and __fish_seen_subcommand_from revoke" -l host-token -d 'An unused host join token, by the ID `rampart admin host-tokens` shows: it stops working' -r
complete -c rampart -n "__fish_rampart_using_subcommand admin; and __fish_seen_subcommand_from revoke" -l reason -d 'Reason, for the audit log' -r
complete -c rampart -n "__fish_rampart_using_subcommand admin; and __fish_seen_subcommand_from revoke" -l home -d 'State directory (config, key, certificate, session)' -r -F
complete -c rampart -n "__fish_rampart_using_subcommand admin; and __fish_seen_subcommand_from revoke" -s h -l help -d 'Print help'
complete -c rampart -n "__fish_rampart_using_subcommand admin; and __fish_seen_subcommand_from revoke" -s V -l version -d 'Print version'
complete -c rampart -n "__fish_rampart_using_subcommand admin; and __fish_seen_subcommand_from krl" -s o -l output -d 'Output file (written atomically)' -r -F
complete -c rampart -n "__fish_rampart_using_subcommand admin; and __fish_seen_subcommand_from krl" -l home -d 'State directory (config, key, certificate, session)' -r -F
complete -c rampart -n "__fish_rampart_using_subcommand admin; and __fish_seen_subcommand_from krl" -s h -l help -d 'Print help'
complete -c rampart -n "__fish_rampart_using_subcommand admin; and __fish_seen_subcommand_from krl" -s V -l version -d 'Print version'
complete -c rampart -n "__fish_rampart_using_subcommand admin; and __fish_seen_subcommand_from host-cert" -l name -d 'Host name (key ID and first principal)' -r
complete -c rampart -n "__fish_rampart_using_subcommand admin; and __fish_seen_subcommand_from host-cert" -l pubkey -d 'The host\'s public key file, e.g. /etc/ssh/ssh_host_ed25519_key.pub' -r -F
complete -c rampart -n "__fish_rampart_using_subcommand admin; and __fish_seen_subcommand_from host-cert" -l principal -d 'Further principal (repeatable)' -r
complete -c rampart -n "__fish_rampart_using_subcommand admin; and __fish_seen_subcommand_from host-cert" -l ttl -d 'Certificate lifetime' -r
complete -c rampart -n "__fish_rampart_using_subcommand admin; and __fish_seen_subcommand_from host-cert" -s o -l output -d 'Output file (default: the key path without `.pub`, plus `-cert.pub`)' -r -F
complete -c rampart -n "__fish_rampart_using_subcommand admin; and __fish_seen_subcommand_from host-cert" -l home -d 'State directory (config, key, certificate, session)' -r -F
complete -c rampart -n "__fish_rampart_using_subcommand admin; and __fish_seen_subcommand_from host-cert" -s h -l help -d 'Print help'
complete -c rampart -n "__fish_rampart_using_subcommand admin; and __fish_seen_subcommand_from host-cert" -s V -l version -d 'Print version'
complete -c rampart -n "__fish_rampart_using_subcommand admin; and __fish_seen_subcommand_from host-token" -l name -d 'Host name (the certificate\'s key ID and first principal)' -r
complete -c rampart -n "__fish_rampart_using_subcommand admin; and __fish_seen_subcommand_from host-token" -l principal -d 'Further principal (repeatable)' -r
complete -c rampart -n "__fish_rampart_using_subcommand admin; and __fish_seen_subcommand_from host-token" -l ttl -d 'Token lifetime (at most 7d)' -r
complete -c rampart -n "__fish_rampart_using_subcommand admin; and __fish_seen_subcommand_from host-token" -l home -d 'State directory (config, key, certificate, session)' -r -F
complete -c rampart -n "__fish_rampart_using_subcommand admin; and __fish_seen_subcommand_from host-token" -s h -l help -d 'Print help'
complete -c rampart -n "__fish_rampart_using_subcommand admin; and __fish_seen_subcommand_from host-token" -s V -l version -d 'Print version'
complete -c rampart -n "__fish_rampart_using_subcommand admin; and __fish_seen_subcommand_from host-tokens" -l home -d 'State directory (config, key, certificate, session)' -r -F
complete -c rampart -n "__fish_rampart_using_subcommand admin; and __fish_seen_subcommand_from host-tokens" -l json -d 'JSON instead of a table'
complete -c rampart -n "__fish_rampart_using_subcommand admin; and __fish_seen_subcommand_from host-tokens" -s h -l help -d 'Print help'
complete -c rampart -n "__fish_rampart_using_subcommand admin; and __fish_seen_subcommand_from host-tokens" -s V -l version -d 'Print version'
complete -c rampart -n "__fish_rampart_using_subcommand admin; and __fish_seen_subcommand_from bastion-token" -l name -d 'Bind the token to this bastion name (a host name)' -r
complete -c rampart -n "__fish_rampart_using_subcommand admin; and __fish_seen_subcommand_from bastion-token" -l ttl -d 'Token lifetime (at most 24h)' -r
complete -c rampart -n "__fish_rampart_using_subcommand admin; and __fish_seen_subcommand_from bastion-token" -l home -d 'State directory (config, key, certificate, session)' -r -F
complete -c rampart -n "__fish_rampart_using_subcommand admin; and __fish_seen_subcommand_from bastion-token" -s h -l help -d 'Print help'
complete -c rampart -n "__fish_rampart_using_subcommand admin; and __fish_seen_subcommand_from bastion-token" -s V -l version -d 'Print version'
complete -c rampart -n "__fish_rampart_using_subcommand admin; and __fish_seen_subcommand_from help" -f -a "user" -d 'Manage users'
complete -c rampart -n "__fish_rampart_using_subcommand admin; and __fish_seen_subcommand_from help" -f -a "invite" -d 'Create a single-use enrolment invite for an existing user'
complete -c rampart -n "__fish_rampart_using_subcommand admin; and __fish_seen_subcommand_from help" -f -a "revoke" -d 'Revoke a certificate serial, all of a user\'s certificates, or a key'
complete -c rampart -n "__fish_rampart_using_subcommand admin; and __fish_seen_subcommand_from help" -f -a "krl" -d 'Download the current KRL (OpenSSH binary format) for sshd\'s `RevokedKeys`'
complete -c rampart -n "__fish_rampart_using_subcommand admin; and __fish_seen_subcommand_from help" -f -a "host-cert" -d 'Sign a host key with the host CA'
complete -c rampart -n "__fish_rampart_using_subcommand admin; and __fish_seen_subcommand_from help" -f -a "host-token" -d 'Create a single-use join token for a host\'s first certificate (`rampart host install --join-token=…` on the host)'
complete -c rampart -n "__fish_rampart_using_subcommand admin; and __fish_seen_subcommand_from help" -f -a "host-tokens" -d 'List the host join tokens: unused ones, and those used or expired in the last day (withdraw one with `revoke --host-token ID`)'
complete -c rampart -n "__fish_rampart_using_subcommand admin; and __fish_seen_subcommand_from help" -f -a "bastion-token" -d 'Create a single-use join token for a bastion (`rampart-bastion join`)'
complete -c rampart -n "__fish_rampart_using_subcommand admin; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c rampart -n "__fish_rampart_using_subcommand audit; and not __fish_seen_subcommand_from verify export help" -l home -d 'State directory (config, key, certificate, session)' -r -F
complete -c rampart -n "__fish_rampart_using_subcommand audit; and not __fish_seen_subcommand_from verify export help" -s h -l help -d 'Print help'
complete -c rampart -n "__fish_rampart_using_subcommand audit; and not __fish_seen_subcommand_from verify export help" -s V -l version -d 'Print version'
complete -c rampart -n "__fish_rampart_using_subcommand audit; and not __fish_seen_subcommand_from verify export help" -f -a "verify" -d 'Verify an audit database (hash chain and signed checkpoints), or prove a JSON Lines export complete and unaltered'
complete -c rampart -n "__fish_rampart_using_subcommand audit; and not __fish_seen_subcommand_from verify export help" -f -a "export" -d 'Export events as JSON Lines (provable), CEF, OCSF or RFC 5424 syslog'
complete -c rampart -n "__fish_rampart_using_subcommand audit; and not __fish_seen_subcommand_from verify export help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c rampart -n "__fish_rampart_using_subcommand audit; and __fish_seen_subcommand_from verify" -l db -d 'The audit database: an SQLite file, or a postgres:// URL for a log several CAs share (password from PGPASSWORD when the URL has none)' -r -F
complete -c rampart -n "__fish_rampart_using_subcommand audit; and __fish_seen_subcommand_from verify" -l export -d 'A JSON Lines export (`rampart audit export --format jsonl`) to check offline' -r -F
complete -c rampart -n "__fish_rampart_using_subcommand audit; and __fish_seen_subcommand_from verify" -l audit-pubkey -d 'The audit public key (OpenSSH format) to check checkpoint signatures with; required with --export' -r -F
complete -c rampart -n "__fish_rampart_using_subcommand audit; and __fish_seen_subcommand_from verify" -l recordings -d 'Also check every sealed session recording against the digest the log sealed: in DIR (the CA\'s `recordings/` directory), or in the shared PostgreSQL audit database at URL (the same URL as --db); needs --db' -r -F
complete -c rampart -n "__fish_rampart_using_subcommand audit; and __fish_seen_subcommand_from verify" -l witness -d 'A witness file (the CA\'s `[audit] witness_file`, or a copy of it from another host): fail when the database is behind any line of it, holds another hash at a witnessed sequence, or has a retention anchor the witness never saw. Needs --db' -r -F
complete -c rampart -n "__fish_rampart_using_subcommand audit; and __fish_seen_subcommand_from verify" -l expect-head -d 'A head recorded elsewhere (the newest event\'s `seq` and `hash` in the SIEM, or a head this command printed before), as SEQ:HASH: fail when the database is behind it or has another hash there. Needs --db' -r
complete -c rampart -n "__fish_rampart_using_subcommand audit; and __fish_seen_subcommand_from verify" -l home -d 'State directory (config, key, certificate, session)' -r -F
complete -c rampart -n "__fish_rampart_using_subcommand audit; and __fish_seen_subcommand_from verify" -s h -l help -d 'Print help'
complete -c rampart -n "__fish_rampart_using_subcommand audit; and __fish_seen_subcommand_from verify" -s V -l version -d 'Print version'
complete -c rampart -n "__fish_rampart_using_subcommand audit; and __fish_seen_subcommand_from export" -l db -d 'The audit database, opened read-only: an SQLite file, or a postgres:// URL (password from PGPASSWORD when the URL has none)' -r -F
complete -c rampart -n "__fish_rampart_using_subcommand audit; and __fish_seen_subcommand_from export" -l format -d 'Output format' -r -f -a "jsonl\t'JSON Lines in Rampart\'s schema, with hashes and signed checkpoints'
cef\t'ArcSight Common Event Format'
ocsf\t'OCSF 1.3.0 JSON, one event per line'
syslog\t'RFC 5424 syslog with structured data'"
complete -c rampart -n "__fish_rampart_using_subcommand audit; and __fish_seen_subcommand_from export" -l since -d 'Only events at or after this time (RFC 3339, e.g. 2025-03-01T00:00:00Z)' -r
complete -c rampart -n "__fish_rampart_using_subcommand audit; and __fish_seen_subcommand_from export" -l until -d 'Only events before this time (RFC 3339)' -r
complete -c rampart -n "__fish_rampart_using_subcommand audit; and __fish_seen_subcommand_from export" -l kind -d 'Only this kind, by name or code (repeatable; not with --format jsonl)' -r
complete -c rampart -n "__fish_rampart_using_subcommand audit; and __fish_seen_subcommand_from export" -l user -d 'Only events about this user (not with --format jsonl)' -r
complete -c rampart -n "__fish_rampart_using_subcommand audit; and __fish_seen_subcommand_from export" -s o -l output -d 'Output file (default: standard output)' -r -F
complete -c rampart -n "__fish_rampart_using_subcommand audit; and __fish_seen_subcommand_from export" -l home -d 'State directory (config, key, certificate, session)' -r -F
complete -c rampart -n "__fish_rampart_using_subcommand audit; and __fish_seen_subcommand_from export" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c rampart -n "__fish_rampart_using_subcommand audit; and __fish_seen_subcommand_from export" -s V -l version -d 'Print version'
complete -c rampart -n "__fish_rampart_using_subcommand audit; and __fish_seen_subcommand_from help" -f -a "verify" -d 'Verify an audit database (hash chain and signed checkpoints), or prove a JSON Lines export complete and unaltered'
complete -c rampart -n "__fish_rampart_using_subcommand audit; and __fish_seen_subcommand_from help" -f -a "export" -d 'Export events as JSON Lines (provable), CEF, OCSF or RFC 5424 syslog'
complete -c rampart -n "__fish_rampart_using_subcommand audit; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c rampart -n "__fish_rampart_using_subcommand sessions; and not __fish_seen_subcommand_from list play help" -l home -d 'State directory (config, key, certificate, session)' -r -F
complete -c rampart -n "__fish_rampart_using_subcommand sessions; and not __fish_seen_subcommand_from list play help" -s h -l help -d 'Print help'
complete -c rampart -n "__fish_rampart_using_subcommand sessions; and not __fish_seen_subcommand_from list play help" -s V -l version -d 'Print version'
complete -c rampart -n "__fish_rampart_using_subcommand sessions; and not __fish_seen_subcommand_from list play help" -f -a "list" -d 'List bastion sessions, newest first (admin)'
complete -c rampart -n "__fish_rampart_using_subcommand sessions; and not __fish_seen_subcommand_from list play help" -f -a "play" -d 'Replay a session\'s recording in this terminal (admin)'
complete -c rampart -n "__fish_rampart_using_subcommand sessions; and not __fish_seen_subcommand_from list play help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c rampart -n "__fish_rampart_using_subcommand sessions; and __fish_seen_subcommand_from list" -l user -d 'Only this user\'s sessions' -r
complete -c rampart -n "__fish_rampart_using_subcommand sessions; and __fish_seen_subcommand_from list" -l target -d 'Only sessions to this target' -r
complete -c rampart -n "__fish_rampart_using_subcommand sessions; and __fish_seen_subcommand_from list" -l limit -d 'At most this many (1-1000)' -r
complete -c rampart -n "__fish_rampart_using_subcommand sessions; and __fish_seen_subcommand_from list" -l home -d 'State directory (config, key, certificate, session)' -r -F
complete -c rampart -n "__fish_rampart_using_subcommand sessions; and __fish_seen_subcommand_from list" -l json -d 'Print JSON instead of a table'
complete -c rampart -n "__fish_rampart_using_subcommand sessions; and __fish_seen_subcommand_from list" -s h -l help -d 'Print help'
complete -c rampart -n "__fish_rampart_using_subcommand sessions; and __fish_seen_subcommand_from list" -s V -l version -d 'Print version'
complete -c rampart -n "__fish_rampart_using_subcommand sessions; and __fish_seen_subcommand_from play" -l speed -d 'Playback speed; 2 is twice as fast, 0 prints everything at once' -r
complete -c rampart -n "__fish_rampart_using_subcommand sessions; and __fish_seen_subcommand_from play" -l home -d 'State directory (config, key, certificate, session)' -r -F
complete -c rampart -n "__fish_rampart_using_subcommand sessions; and __fish_seen_subcommand_from play" -l raw -d 'Write the verified asciicast v2 file to stdout instead of replaying it (for `asciinema play -` or an archive)'
complete -c rampart -n "__fish_rampart_using_subcommand sessions; and __fish_seen_subcommand_from play" -s h -l help -d 'Print help'
complete -c rampart -n "__fish_rampart_using_subcommand sessions; and __fish_seen_subcommand_from play" -s V -l version -d 'Print version'
complete -c rampart -n "__fish_rampart_using_subcommand sessions; and __fish_seen_subcommand_from help" -f -a "list" -d 'List bastion sessions, newest first (admin)'
complete -c rampart -n "__fish_rampart_using_subcommand sessions; and __fish_seen_subcommand_from help" -f -a "play" -d 'Replay a session\'s recording in this terminal (admin)'
complete -c rampart -n "__fish_rampart_using_subcommand sessions; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c rampart -n "__fish_rampart_using_subcommand policy; and not __fish_seen_subcommand_from check test help" -l home -d 'State directory (config, key, certificate, session)' -r -F
complete -c rampart -n "__fish_rampart_using_subcommand policy; and not __fish_seen_subcommand_from check test help" -s h -l help -d 'Print help'
complete -c rampart -n "__fish_rampart_using_subcommand policy; and not __fish_seen_subcommand_from check test help" -s V -l version -d 'Print version'
complete -c rampart -n "__fish_rampart_using_subcommand policy; and not __fish_seen_subcommand_from check test help" -f -a "check" -d 'Parse and lint a policy file'
complete -c rampart -n "__fish_rampart_using_subcommand policy; and not __fish_seen_subcommand_from check test help" -f -a "test" -d 'Evaluate one certificate request against a policy file'
complete -c rampart -n "__fish_rampart_using_subcommand policy; and not __fish_seen_subcommand_from check test help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c rampart -n "__fish_rampart_using_subcommand policy; and __fish_seen_subcommand_from check" -l ca-config -d 'The CA\'s config (`rampart-ca.toml`): also lint what depends on it, e.g. roles needing phishing-resistant keys while `[webauthn]` trusts no key model' -r -F
complete -c rampart -n "__fish_rampart_using_subcommand policy; and __fish_seen_subcommand_from check" -l home -d 'State directory (config, key, certificate, session)' -r -F
complete -c rampart -n "__fish_rampart_using_subcommand policy; and __fish_seen_subcommand_from check" -s h -l help -d 'Print help'
complete -c rampart -n "__fish_rampart_using_subcommand policy; and __fish_seen_subcommand_from check" -s V -l version -d 'Print version'
complete -c rampart -n "__fish_rampart_using_subcommand policy; and __fish_seen_subcommand_from test" -l user -d 'User name' -r
complete -c rampart -n "__fish_rampart_using_subcommand policy; and __fish_seen_subcommand_from test" -l groups -d 'The user\'s groups, comma-separated' -r
complete -c rampart -n "__fish_rampart_using_subcommand policy; and __fish_seen_subcommand_from test" -l login -d 'Login (principal) the user wants' -r
complete -c rampart -n "__fish_rampart_using_subcommand policy; and __fish_seen_subcommand_from test" -l factor -d 'The factor used' -r -f -a "totp\t'TOTP code'
recovery\t'Recovery code'
webauthn\t'WebAuthn without user verification'
webauthn-uv\t'WebAuthn with user verification (PIN or biometric) from a key the CA vouches for (attested or allow-listed): phishing-resistant'
webauthn-unattested\t'WebAuthn without user verification from an unattested key'
webauthn-uv-unattested\t'WebAuthn with user verification from a key the CA does not vouch for: unattested-key'
webauthn-link\t'`webauthn`, approved on the CA\'s page through a link rather than by the CLI from a key on this machine (roles with `webauthn_link = false` refuse the `-link` factors)'
webauthn-uv-link\t'`webauthn-uv` approved through a link'
webauthn-unattested-link\t'`webauthn-unattested` approved through a link'
webauthn-uv-unattested-link\t'`webauthn-uv-unattested` approved through a link'
oidc\t'OpenID Connect step-up'"
complete -c rampart -n "__fish_rampart_using_subcommand policy; and __fish_seen_subcommand_from test" -l mfa-age -d 'How long ago the factor was verified' -r
complete -c rampart -n "__fish_rampart_using_subcommand policy; and __fish_seen_subcommand_from test" -l ttl -d 'Requested certificate lifetime' -r
complete -c rampart -n "__fish_rampart_using_subcommand policy; and __fish_seen_subcommand_from test" -l home -d 'State directory (config, key, certificate, session)' -r -F
complete -c rampart -n "__fish_rampart_using_subcommand policy; and __fish_seen_subcommand_from test" -l json -d 'Print the decision as JSON'
complete -c rampart -n "__fish_rampart_using_subcommand policy; and __fish_seen_subcommand_from test" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c rampart -n "__fish_rampart_using_subcommand policy; and __fish_seen_subcommand_from test" -s V -l version -d 'Print version'
complete -c rampart -n "__fish_rampart_using_subcommand policy; and __fish_seen_subcommand_from help" -f -a "check" -d 'Parse and lint a policy file'
complete -c rampart -n "__fish_rampart_using_subcommand policy; and __fish_seen_subcommand_from help" -f -a "test" -d 'Evaluate one certificate request against a policy file'
complete -c rampart -n "__fish_rampart_using_subcommand policy; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c rampart -n "__fish_rampart_using_subcommand completions" -l home -d 'State directory (config, key, certificate, session)' -r -F
complete -c rampart -n "__fish_rampart_using_subcommand completions" -s h -l help -d 'Print help'
complete -c rampart -n "__fish_rampart_using_subcommand completions" -s V -l version -d 'Print version'
complete -c rampart -n "__fish_rampart_using_subcommand dev" -l dir -d 'Directory for the demo CA\'s keys, database and secrets' -r -F
complete -c rampart -n "__fish_rampart_using_subcommand dev" -l listen -d 'Address the CA listens on' -r
complete -c rampart -n "__fish_rampart_using_subcommand dev" -l ca-bin -d 'The `rampart-ca` binary (default: beside `rampart`, else on PATH)' -r -F
complete -c rampart -n "__fish_rampart_using_subcommand dev" -l bastion-listen -d 'Address the bastion listens on' -r
complete -c rampart -n "__fish_rampart_using_subcommand dev" -l bastion-bin -d 'The `rampart-bastion` binary (default: beside `rampart`, else on PATH)' -r -F
complete -c rampart -n "__fish_rampart_using_subcommand dev" -l target -d 'The demo target, `NAME=HOST[:PORT]` (default: the local sshd on 127.0.0.1:22 when one listens). Used when the bastion is first joined' -r
complete -c rampart -n "__fish_rampart_using_subcommand dev" -l target-host-key -d 'Pin the target\'s host key from this public key file (default for the local sshd: /etc/ssh/ssh_host_ed25519_key.pub; for --target: expect a host certificate from the Rampart host CA)' -r -F
complete -c rampart -n "__fish_rampart_using_subcommand dev" -l home -d 'State directory (config, key, certificate, session)' -r -F
complete -c rampart -n "__fish_rampart_using_subcommand dev" -l no-bastion -d 'Run only the CA, no bastion'
complete -c rampart -n "__fish_rampart_using_subcommand dev" -s h -l help -d 'Print help'
complete -c rampart -n "__fish_rampart_using_subcommand dev" -s V -l version -d 'Print version'
complete -c rampart -n "__fish_rampart_using_subcommand host; and not __fish_seen_subcommand_from krl-sync principals install renew-cert help" -l home -d 'State directory (config, key, certificate, session)' -r -F
complete -c rampart -n "__fish_rampart_using_subcommand host; and not __fish_seen_subcommand_from krl-sync principals install renew-cert help" -s h -l help -d 'Print help'
complete -c rampart -n "__fish_rampart_using_subcommand host; and not __fish_seen_subcommand_from krl-sync principals install renew-cert help" -s V -l version -d 'Print version'
complete -c rampart -n "__fish_rampart_using_subcommand host; and not __fish_seen_subcommand_from krl-sync principals install renew-cert help" -f -a "krl-sync" -d 'Fetch the CA\'s signed KRL, verify it, and install it atomically for `RevokedKeys`'
complete -c rampart -n "__fish_rampart_using_subcommand host; and not __fish_seen_subcommand_from krl-sync principals install renew-cert help" -f -a "principals" -d 'For sshd\'s AuthorizedPrincipalsCommand: print the certificate principals the host policy accepts for an account'
complete -c rampart -n "__fish_rampart_using_subcommand host; and not __fish_seen_subcommand_from krl-sync principals install renew-cert help" -f -a "install" -d 'Print (or write with --write) the sshd drop-in, CA key, host policy and timer'
complete -c rampart -n "__fish_rampart_using_subcommand host; and not __fish_seen_subcommand_from krl-sync principals install renew-cert help" -f -a "renew-cert" -d 'Renew this host\'s certificate from the CA before it expires, proving the host holds the current one and its key (run daily by rampart-host-cert.timer); the first one comes from `rampart admin host-cert`'
complete -c rampart -n "__fish_rampart_using_subcommand host; and not __fish_seen_subcommand_from krl-sync principals install renew-cert help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c rampart -n "__fish_rampart_using_subcommand host; and __fish_seen_subcommand_from krl-sync" -l ca -d 'CA URL, e.g. https://ca.example.com:8443; several CAs sharing one database: comma-separated, tried in turn when one cannot be reached' -r
complete -c rampart -n "__fish_rampart_using_subcommand host; and __fish_seen_subcommand_from krl-sync" -l ca-fingerprint -d 'SHA-256 fingerprint of the CA\'s TLS certificate' -r
complete -c rampart -n "__fish_rampart_using_subcommand host; and __fish_seen_subcommand_from krl-sync" -l ca-key -d 'The user CA public key(s) the KRL signature must verify with (the TrustedUserCAKeys file)' -r -F
complete -c rampart -n "__fish_rampart_using_subcommand host; and __fish_seen_subcommand_from krl-sync" -l out -d 'Where to install the KRL (its signature goes to FILE.sig)' -r -F
complete -c rampart -n "__fish_rampart_using_subcommand host; and __fish_seen_subcommand_from krl-sync" -l max-age -d 'Refuse a KRL whose signed generation date is older than this (the CA re-signs its KRL hourly), e.g. 6h' -r
complete -c rampart -n "__fish_rampart_using_subcommand host; and __fish_seen_subcommand_from krl-sync" -l home -d 'State directory (config, key, certificate, session)' -r -F
complete -c rampart -n "__fish_rampart_using_subcommand host; and __fish_seen_subcommand_from krl-sync" -s h -l help -d 'Print help'
complete -c rampart -n "__fish_rampart_using_subcommand host; and __fish_seen_subcommand_from krl-sync" -s V -l version -d 'Print version'
complete -c rampart -n "__fish_rampart_using_subcommand host; and __fish_seen_subcommand_from principals" -l policy -d 'The host policy file (TOML)' -r -F
complete -c rampart -n "__fish_rampart_using_subcommand host; and __fish_seen_subcommand_from principals" -l home -d 'State directory (config, key, certificate, session)' -r -F
complete -c rampart -n "__fish_rampart_using_subcommand host; and __fish_seen_subcommand_from principals" -s h -l help -d 'Print help'
complete -c rampart -n "__fish_rampart_using_subcommand host; and __fish_seen_subcommand_from principals" -s V -l version -d 'Print version'
complete -c rampart -n "__fish_rampart_using_subcommand host; and __fish_seen_subcommand_from install" -l ca -d 'CA URL: fetch the user CA key and the first KRL from it, and configure the timer' -r
complete -c rampart -n "__fish_rampart_using_subcommand host; and __fish_seen_subcommand_from install" -l ca-fingerprint -d 'SHA-256 fingerprint of the CA\'s TLS certificate' -r
complete -c rampart -n "__fish_rampart_using_subcommand host; and __fish_seen_subcommand_from install" -l root -d 'Write below this directory instead of / (for tests and images)' -r -F
complete -c rampart -n "__fish_rampart_using_subcommand host; and __fish_seen_subcommand_from install" -l rampart-bin -d 'Path of the rampart binary on the host, as sshd will run it' -r -F
complete -c rampart -n "__fish_rampart_using_subcommand host; and __fish_seen_subcommand_from install" -l principals-user -d 'The unprivileged user sshd runs `rampart host principals` as' -r
complete -c rampart -n "__fish_rampart_using_subcommand host; and __fish_seen_subcommand_from install" -l join-token -d 'A host join token (`rampart admin host-token`): when the host has no certificate yet, get its first one from the CA for --host-key, and have sshd present it. Pass it as --join-token=TOKEN' -r
complete -c rampart -n "__fish_rampart_using_subcommand host; and __fish_seen_subcommand_from install" -l host-key -d 'The host key the certificate is for, as sshd reads it (its `.pub` is sent; the certificate goes beside it as `…-cert.pub`)' -r -F
complete -c rampart -n "__fish_rampart_using_subcommand host; and __fish_seen_subcommand_from install" -l home -d 'State directory (config, key, certificate, session)' -r -F
complete -c rampart -n "__fish_rampart_using_subcommand host; and __fish_seen_subcommand_from install" -l write -d 'Write the files (default: only print what would be written)'
complete -c rampart -n "__fish_rampart_using_subcommand host; and __fish_seen_subcommand_from install" -s h -l help -d 'Print help'
complete -c rampart -n "__fish_rampart_using_subcommand host; and __fish_seen_subcommand_from install" -s V -l version -d 'Print version'
complete -c rampart -n "__fish_rampart_using_subcommand host; and __fish_seen_subcommand_from renew-cert" -l ca -d 'CA URL, e.g. https://ca.example.com:8443; several CAs sharing one database: comma-separated, tried in turn when one cannot be reached' -r
complete -c rampart -n "__fish_rampart_using_subcommand host; and __fish_seen_subcommand_from renew-cert" -l ca-fingerprint -d 'SHA-256 fingerprint of the CA\'s TLS certificate' -r
complete -c rampart -n "__fish_rampart_using_subcommand host; and __fish_seen_subcommand_from renew-cert" -l key -d 'The host\'s private key (sshd\'s HostKey)' -r -F
complete -c rampart -n "__fish_rampart_using_subcommand host; and __fish_seen_subcommand_from renew-cert" -l cert -d 'The host certificate to renew and replace (sshd\'s HostCertificate); default: the key\'s path with -cert.pub' -r -F
complete -c rampart -n "__fish_rampart_using_subcommand host; and __fish_seen_subcommand_from renew-cert" -l renew-before -d 'Renew only when less than this is left of the certificate, e.g. 10d' -r
complete -c rampart -n "__fish_rampart_using_subcommand host; and __fish_seen_subcommand_from renew-cert" -l home -d 'State directory (config, key, certificate, session)' -r -F
complete -c rampart -n "__fish_rampart_using_subcommand host; and __fish_seen_subcommand_from renew-cert" -s h -l help -d 'Print help'
complete -c rampart -n "__fish_rampart_using_subcommand host; and __fish_seen_subcommand_from renew-cert" -s V -l version -d 'Print version'
complete -c rampart -n "__fish_rampart_using_subcommand host; and __fish_seen_subcommand_from help" -f -a "krl-sync" -d 'Fetch the CA\'s signed KRL, verify it, and install it atomically for `RevokedKeys`'
complete -c rampart -n "__fish_rampart_using_subcommand host; and __fish_seen_subcommand_from help" -f -a "principals" -d 'For sshd\'s AuthorizedPrincipalsCommand: print the certificate principals the host policy accepts for an account'
complete -c rampart -n "__fish_rampart_using_subcommand host; and __fish_seen_subcommand_from help" -f -a "install" -d 'Print (or write with --write) the sshd drop-in, CA key, host policy and timer'
complete -c rampart -n "__fish_rampart_using_subcommand host; and __fish_seen_subcommand_from help" -f -a "renew-cert" -d 'Renew this host\'s certificate from the CA before it expires, proving the host holds the current one and its key (run daily by rampart-host-cert.timer); the first one comes from `rampart admin host-cert`'
complete -c rampart -n "__fish_rampart_using_subcommand host; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c rampart -n "__fish_rampart_using_subcommand help; and not __fish_seen_subcommand_from enroll login status logout ls ssh keys admin audit sessions policy completions dev host help" -f -a "enroll" -d 'Redeem an invite: register TOTP (or a security key) and receive recovery codes'
complete -c rampart -n "__fish_rampart_using_subcommand help; and not __fish_seen_subcommand_from enroll login status logout ls ssh keys admin audit sessions policy completions dev host help" -f -a "login" -d 'Prove MFA and get a certificate for your SSH key'
complete -c rampart -n "__fish_rampart_using_subcommand help; and not __fish_seen_subcommand_from enroll login status logout ls ssh keys admin audit sessions policy completions dev host help" -f -a "status" -d 'Show who you are and how long your certificate lasts (exit 1 without a valid one)'
complete -c rampart -n "__fish_rampart_using_subcommand help; and not __fish_seen_subcommand_from enroll login status logout ls ssh keys admin audit sessions policy completions dev host help" -f -a "logout" -d 'End the session, delete the certificate and remove the key from ssh-agent'
complete -c rampart -n "__fish_rampart_using_subcommand help; and not __fish_seen_subcommand_from enroll login status logout ls ssh keys admin audit sessions policy completions dev host help" -f -a "ls" -d 'List the targets you may reach through the bastions, with your logins there'
complete -c rampart -n "__fish_rampart_using_subcommand help; and not __fish_seen_subcommand_from enroll login status logout ls ssh keys admin audit sessions policy completions dev host help" -f -a "ssh" -d 'Run ssh to LOGIN@TARGET through the bastion that serves it'
complete -c rampart -n "__fish_rampart_using_subcommand help; and not __fish_seen_subcommand_from enroll login status logout ls ssh keys admin audit sessions policy completions dev host help" -f -a "keys" -d 'Add, list and remove your security keys (WebAuthn / FIDO2)'
complete -c rampart -n "__fish_rampart_using_subcommand help; and not __fish_seen_subcommand_from enroll login status logout ls ssh keys admin audit sessions policy completions dev host help" -f -a "admin" -d 'Administer users, invites, revocations and host certificates'
complete -c rampart -n "__fish_rampart_using_subcommand help; and not __fish_seen_subcommand_from enroll login status logout ls ssh keys admin audit sessions policy completions dev host help" -f -a "audit" -d 'Work with the audit log'
complete -c rampart -n "__fish_rampart_using_subcommand help; and not __fish_seen_subcommand_from enroll login status logout ls ssh keys admin audit sessions policy completions dev host help" -f -a "sessions" -d 'List bastion sessions and replay their recordings (admin)'
complete -c rampart -n "__fish_rampart_using_subcommand help; and not __fish_seen_subcommand_from enroll login status logout ls ssh keys admin audit sessions policy completions dev host help" -f -a "policy" -d 'Check and try out a policy file'
complete -c rampart -n "__fish_rampart_using_subcommand help; and not __fish_seen_subcommand_from enroll login status logout ls ssh keys admin audit sessions policy completions dev host help" -f -a "completions" -d 'Print a shell completion script'
complete -c rampart -n "__fish_rampart_using_subcommand help; and not __fish_seen_subcommand_from enroll login status logout ls ssh keys admin audit sessions policy completions dev host help" -f -a "dev" -d 'Run a local CA for trying Rampart on one machine'
complete -c rampart -n "__fish_rampart_using_subcommand help; and not __fish_seen_subcommand_from enroll login status logout ls ssh keys admin audit sessions policy completions dev host help" -f -a "host" -d 'Helpers for production hosts: KRL sync, sshd principals, install'
complete -c rampart -n "__fish_rampart_using_subcommand help; and not __fish_seen_subcommand_from enroll login status logout ls ssh keys admin audit sessions policy completions dev host help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c rampart -n "__fish_rampart_using_subcommand help; and __fish_seen_subcommand_from keys" -f -a "add" -d 'Enrol another security key for your account (needs a login)'
complete -c rampart -n "__fish_rampart_using_subcommand help; and __fish_seen_subcommand_from keys" -f -a "list" -d 'List your security keys'
complete -c rampart -n "__fish_rampart_using_subcommand help; and __fish_seen_subcommand_from keys" -f -a "remove" -d 'Remove one of your security keys by ID (see `rampart keys list`)'
complete -c rampart -n "__fish_rampart_using_subcommand help; and __fish_seen_subcommand_from admin" -f -a "user" -d 'Manage users'
complete -c rampart -n "__fish_rampart_using_subcommand help; and __fish_seen_subcommand_from admin" -f -a "invite" -d 'Create a single-use enrolment invite for an existing user'
complete -c rampart -n "__fish_rampart_using_subcommand help; and __fish_seen_subcommand_from admin" -f -a "revoke" -d 'Revoke a certificate serial, all of a user\'s certificates, or a key'
complete -c rampart -n "__fish_rampart_using_subcommand help; and __fish_seen_subcommand_from admin" -f -a "krl" -d 'Download the current KRL (OpenSSH binary format) for sshd\'s `RevokedKeys`'
complete -c rampart -n "__fish_rampart_using_subcommand help; and __fish_seen_subcommand_from admin" -f -a "host-cert" -d 'Sign a host key with the host CA'
complete -c rampart -n "__fish_rampart_using_subcommand help; and __fish_seen_subcommand_from admin" -f -a "host-token" -d 'Create a single-use join token for a host\'s first certificate (`rampart host install --join-token=…` on the host)'
complete -c rampart -n "__fish_rampart_using_subcommand help; and __fish_seen_subcommand_from admin" -f -a "host-tokens" -d 'List the host join tokens: unused ones, and those used or expired in the last day (withdraw one with `revoke --host-token ID`)'
complete -c rampart -n "__fish_rampart_using_subcommand help; and __fish_seen_subcommand_from admin" -f -a "bastion-token" -d 'Create a single-use join token for a bastion (`rampart-bastion join`)'
complete -c rampart -n "__fish_rampart_using_subcommand help; and __fish_seen_subcommand_from audit" -f -a "verify" -d 'Verify an audit database (hash chain and signed checkpoints), or prove a JSON Lines export complete and unaltered'
complete -c rampart -n "__fish_rampart_using_subcommand help; and __fish_seen_subcommand_from audit" -f -a "export" -d 'Export events as JSON Lines (provable), CEF, OCSF or RFC 5424 syslog'
complete -c rampart -n "__fish_rampart_using_subcommand help; and __fish_seen_subcommand_from sessions" -f -a "list" -d 'List bastion sessions, newest first (admin)'
complete -c rampart -n "__fish_rampart_using_subcommand help; and __fish_seen_subcommand_from sessions" -f -a "play" -d 'Replay a session\'s recording in this terminal (admin)'
complete -c rampart -n "__fish_rampart_using_subcommand help; and __fish_seen_subcommand_from policy" -f -a "check" -d 'Parse and lint a policy file'
complete -c rampart -n "__fish_rampart_using_subcommand help; and __fish_seen_subcommand_from policy" -f -a "test" -d 'Evaluate one certificate request against a policy file'
complete -c rampart -n "__fish_rampart_using_subcommand help; and __fish_seen_subcommand_from host" -f -a "krl-sync" -d 'Fetch the CA\'s signed KRL, verify it, and install it atomically for `RevokedKeys`'
complete -c rampart -n "__fish_rampart_using_subcommand help; and __fish_seen_subcommand_from host" -f -a "principals" -d 'For sshd\'s AuthorizedPrincipalsCommand: print the certificate principals the host policy accepts for an account'
complete -c rampart -n "__fish_rampart_using_subcommand help; and __fish_seen_subcommand_from host" -f -a "install" -d 'Print (or write with --write) the sshd drop-in, CA key, host policy and timer'
complete -c rampart -n "__fish_rampart_using_subcommand help; and __fish_seen_subcommand_from host" -f -a "renew-cert" -d 'Renew this host\'s certificate from the CA before it expires, proving the host holds the current one and its key (run daily by rampart-host-cert.timer); the first one comes from `rampart admin host-cert`'
