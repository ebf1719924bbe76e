// No-op external-task worker on Camunda's own JavaScript client, the JS contender of
// bench/worker_throughput.py. Subscribes to one topic, completes every task (after --work-ms),
// and exits on SIGTERM/SIGINT or after --exit-after completions.
//
//   node bench/js/worker.js --base-url URL --topic T [--max-tasks N] [--max-parallel N]
//        [--async-response-timeout MS] [--interval MS] [--work-ms MS] [--exit-after N]
//
// Options left out keep the client's defaults (maxTasks 10, interval 300 ms, no long polling,
// no limit on parallel executions).
import { Client } from "camunda-external-task-client-js";

function parseArgs(argv) {
  const out = {};
  for (let i = 0; i < argv.length; i += 2) {
    if (!argv[i].startsWith("--")) throw new Error(`unexpected argument ${argv[i]}`);
    out[argv[i].slice(2)] = argv[i + 1];
  }
  return out;
}

const args = parseArgs(process.argv.slice(2));
if (!args["base-url"] || !args.topic) {
  console.error("usage: worker.js --base-url URL --topic TOPIC [options]");
  process.exit(2);
}
const num = (name) => (args[name] === undefined ? undefined : Number(args[name]));

const options = { baseUrl: args["base-url"], workerId: args["worker-id"] || `bench-js-${process.pid}` };
if (num("max-tasks") !== undefined) options.maxTasks = num("max-tasks");
if (num("max-parallel") !== undefined) options.maxParallelExecutions = num("max-parallel");
if (num("async-response-timeout") !== undefined) options.asyncResponseTimeout = num("async-response-timeout");
if (num("interval") !== undefined) options.interval = num("interval");
const workMs = num("work-ms") || 0;
const exitAfter = num("exit-after") || 0;

const client = new Client(options);
let completed = 0;
let errors = 0;

function finish(code) {
  client.stop();
  console.log(JSON.stringify({ completed, errors }));
  process.exit(code);
}

client.on("complete:error", () => { errors += 1; });
client.on("poll:error", () => { errors += 1; });
client.on("handler:error", () => { errors += 1; });

client.subscribe(args.topic, async ({ task, taskService }) => {
  if (workMs > 0) await new Promise((resolve) => setTimeout(resolve, workMs));
  await taskService.complete(task);
  completed += 1;
  if (exitAfter && completed >= exitAfter) finish(0);
});

process.on("SIGTERM", () => finish(0));
process.on("SIGINT", () => finish(0));
console.error(`bench-js: ${JSON.stringify(options)} topic=${args.topic} workMs=${workMs}`);
