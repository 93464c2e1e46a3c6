# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_rampart_bastion_global_optspecs
    string join \n h/help V/version
end

function __fish_rampart_bastion_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_rampart_bastion_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_rampart_bastion_using_subcommand
    set -l cmd (__fish_rampart_bastion_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c rampart-bastion -n "__fish_rampart_bastion_needs_command" -s h -l help -d 'Print help'
complete -c rampart-bastion -n "__fish_rampart_bastion_needs_command" -s V -l version -d 'Print version'
complete -c rampart-bastion -n "__fish_rampart_bastion_needs_command" -f -a "join" -d 'Join a CA with a token from `rampart admin bastion-token`; writes DIR/bastion.toml'
complete -c rampart-bastion -n "__fish_rampart_bastion_needs_command" -f -a "check" -d 'Validate a config file and the identity files it names'
complete -c rampart-bastion -n "__fish_rampart_bastion_needs_command" -f -a "serve" -d 'Run the SSH daemon; SIGHUP re-reads the config (targets, limits) without dropping sessions'
complete -c rampart-bastion -n "__fish_rampart_bastion_needs_command" -f -a "completions" -d 'Print a shell completion script (the Debian package installs the bash, zsh and fish ones)'
complete -c rampart-bastion -n "__fish_rampart_bastion_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c rampart-bastion -n "__fish_rampart_bastion_using_subcommand join" -l ca -d 'CA URL, https://host:port' -r
complete -c rampart-bastion -n "__fish_rampart_bastion_using_subcommand join" -l ca-fingerprint -d 'CA TLS certificate fingerprint (SHA256:…), as printed by `rampart-ca init`' -r
complete -c rampart-bastion -n "__fish_rampart_bastion_using_subcommand join" -l token -d 'The join token' -r
complete -c rampart-bastion -n "__fish_rampart_bastion_using_subcommand join" -l name -d 'This bastion\'s name (a host name; its host certificate\'s principal)' -r
complete -c rampart-bastion -n "__fish_rampart_bastion_using_subcommand join" -l dir -d 'Directory for the identity and config' -r -F
complete -c rampart-bastion -n "__fish_rampart_bastion_using_subcommand join" -s h -l help -d 'Print help'
complete -c rampart-bastion -n "__fish_rampart_bastion_using_subcommand check" -l config -d 'The config file' -r -F
complete -c rampart-bastion -n "__fish_rampart_bastion_using_subcommand check" -s h -l help -d 'Print help'
complete -c rampart-bastion -n "__fish_rampart_bastion_using_subcommand serve" -l config -d 'The config file' -r -F
complete -c rampart-bastion -n "__fish_rampart_bastion_using_subcommand serve" -s h -l help -d 'Print help'
complete -c rampart-bastion -n "__fish_rampart_bastion_using_subcommand completions" -s h -l help -d 'Print help'
complete -c rampart-bastion -n "__fish_rampart_bastion_using_subcommand help; and not __fish_seen_subcommand_from join check serve completions help" -f -a "join" -d 'Join a CA with a token from `rampart admin bastion-token`; writes DIR/bastion.toml'
complete -c rampart-bastion -n "__fish_rampart_bastion_using_subcommand help; and not __fish_seen_subcommand_from join check serve completions help" -f -a "check" -d 'Validate a config file and the identity files it names'
complete -c rampart-bastion -n "__fish_rampart_bastion_using_subcommand help; and not __fish_seen_subcommand_from join check serve completions help" -f -a "serve" -d 'Run the SSH daemon; SIGHUP re-reads the config (targets, limits) without dropping sessions'
complete -c rampart-bastion -n "__fish_rampart_bastion_using_subcommand help; and not __fish_seen_subcommand_from join check serve completions help" -f -a "completions" -d 'Print a shell completion script (the Debian package installs the bash, zsh and fish ones)'
complete -c rampart-bastion -n "__fish_rampart_bastion_using_subcommand help; and not __fish_seen_subcommand_from join check serve completions help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
