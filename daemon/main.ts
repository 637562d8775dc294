#!/usr/bin/env node
import { BpfError } from '../bpf/native/errors.js';
/** Entry point of the nodewarden binary: one CLI for every capability. */
import { InputError } from '../model/input-errors.js';
import { EXIT_FAILED, EXIT_USAGE, parseCommon, UsageError } from './cli/args.js';
import { commandHelp, commands, mainHelp } from './cli/commands.js';
import { ControlError } from './control/client.js';

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(`${mainHelp()}\n`);
    return name === undefined ? EXIT_USAGE : 0;
  }
  if (name === '--version') return commands.version!.run(parseCommon([]).flags, []);
  const command = commands[name];
  try {
    if (!command) throw new UsageError(`unknown command ${JSON.stringify(name)}; run nodewarden --help`);
    const { flags, positionals, values } = parseCommon(rest, command.extraOptions);
    if (flags.help) {
      process.stdout.write(`${commandHelp(name, command)}\n`);
      return 0;
    }
    return await command.run(flags, positionals, values);
  } catch (error) {
    if (error instanceof UsageError) {
      process.stderr.write(`nodewarden: ${error.message}\n`);
      return EXIT_USAGE;
    }
    if (error instanceof InputError || error instanceof BpfError || error instanceof ControlError) {
      process.stderr.write(`nodewarden ${name}: ${error.message}\n`);
      return EXIT_FAILED;
    }
    process.stderr.write(
      `nodewarden ${name}: unexpected error: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
    );
    return EXIT_FAILED;
  }
}

// No top-level await: the single executable runs this as CommonJS (Node's SEA).
main(process.argv.slice(2)).then((code) => {
  process.exitCode = code;
});
