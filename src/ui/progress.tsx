/**
 * Live progress of `dcp up` on a terminal (Ink): a line per step with a spinner, its elapsed
 * time and result; workers joining as n/N; warnings inline; an error with its hint, the
 * rollback shown as it happens; and, at the end, a summary worth copying. It is fed by the same
 * engine events that the plain stderr lines show in CI.
 */
import { Box, render, renderToString, Static, Text } from 'ink';
import Spinner from 'ink-spinner';
import { useEffect, useState } from 'react';
import type { ClusterRecord } from '../cluster/state.js';
import type { ProgressEvent } from '../providers/provider.js';
import { clientFiles, dashboardRows, snippetFor, upState } from './cluster.js';

export interface Task {
  step: string;
  status: 'running' | 'done' | 'failed';
  detail?: string;
  startedAt: number;
  endedAt?: number;
}

/** A finished step or a warning, printed once, in the order they happened. */
export type Settled = { key: string; task: Task } | { key: string; warning: string };

export interface ViewState {
  tasks: Task[];
  /** Append-only: Ink's <Static> prints only the items added since its last render. */
  settled: Settled[];
}

/** The view after one more engine event: a step that finished joins the settled lines. */
export function applyToView(state: ViewState, event: ProgressEvent, now: number): ViewState {
  const tasks = applyEvent(state.tasks, event, now);
  const finished = event.status === 'done' ? tasks.find((task) => task.step === event.step) : undefined;
  return {
    tasks,
    settled: finished
      ? [...state.settled, { key: `task:${finished.step}:${now}`, task: finished }]
      : state.settled,
  };
}

/** The task list after one more engine event. */
export function applyEvent(current: Task[], event: ProgressEvent, now: number): Task[] {
  // A rollback means whatever was still going has failed.
  const tasks = event.step === 'roll back' && event.status === 'start' ? failRunning(current, now) : current;
  const index = tasks.findIndex((task) => task.step === event.step);
  const previous = index >= 0 ? tasks[index]! : undefined;
  const next: Task =
    event.status === 'start'
      ? { step: event.step, status: 'running', detail: event.detail, startedAt: now }
      : {
          step: event.step,
          status: event.status === 'done' ? 'done' : (previous?.status ?? 'running'),
          detail: event.detail ?? previous?.detail,
          startedAt: previous?.startedAt ?? now,
          ...(event.status === 'done' ? { endedAt: now } : {}),
        };
  return previous ? tasks.map((task, i) => (i === index ? next : task)) : [...tasks, next];
}

/** Marks whatever was still running as failed. */
export function failRunning(tasks: Task[], now: number): Task[] {
  return tasks.map((task) =>
    task.status === 'running' ? { ...task, status: 'failed', endedAt: now } : task,
  );
}

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)}s`;
}

function TaskLine({ task, now }: { task: Task; now: number }) {
  return (
    <Box>
      <Box width={2}>
        {task.status === 'running' ? (
          <Text color="cyan">
            <Spinner type="dots" />
          </Text>
        ) : task.status === 'done' ? (
          <Text color="green">✓</Text>
        ) : (
          <Text color="red">✗</Text>
        )}
      </Box>
      {/* One line a step, however narrow the terminal: a wrapped line would confuse the redraw. */}
      <Text wrap="truncate-end">
        {task.step}
        <Text dimColor>{`  ${seconds(Math.max(0, (task.endedAt ?? now) - task.startedAt))}`}</Text>
        {task.detail ? <Text dimColor>{`  ${task.detail}`}</Text> : null}
      </Text>
    </Box>
  );
}

export function TaskList({ tasks, now }: { tasks: Task[]; now: number }) {
  return (
    <Box flexDirection="column">
      {tasks.map((task) => (
        <TaskLine key={task.step} task={task} now={now} />
      ))}
    </Box>
  );
}

export function Summary({ record }: { record: ClusterRecord }) {
  const rows: [string, string][] = [
    ['scheduler', record.scheduler_address ?? ''],
    ...dashboardRows(record),
    ['workers', String(record.workers)],
    ['TLS', record.tls ? `CA ${record.tls.caFile}` : 'off'],
    ...(record.tls ? ([['', `client ${clientFiles(record.tls)}`]] as [string, string][]) : []),
  ];
  return (
    <Box flexDirection="column" marginTop={1}>
      <Text>
        <Text color="green">✓ </Text>
        <Text bold>{record.name}</Text> is {upState(record)} ({record.provider}, {record.workers} worker
        {record.workers === 1 ? '' : 's'}, {record.tls ? 'TLS' : 'no TLS'})
      </Text>
      <Box flexDirection="column" marginLeft={2} marginTop={1}>
        {rows.map(([label, value], i) => (
          <Text key={i}>
            <Text dimColor>{label.padEnd(11)}</Text>
            {value}
          </Text>
        ))}
      </Box>
      <Box flexDirection="column" marginTop={1}>
        <Text bold>Connect from Python:</Text>
        <Box marginLeft={4} flexDirection="column">
          <Text>{snippetFor(record, 'python').trimEnd()}</Text>
        </Box>
      </Box>
      <Box marginTop={1}>
        <Text>
          <Text bold>Next: </Text>dcp status {record.name} · dcp dashboard {record.name} · dcp down{' '}
          {record.name}
        </Text>
      </Box>
    </Box>
  );
}

/**
 * Finished steps and warnings are printed once (<Static>); only steps still going are redrawn,
 * so the redrawn part stays short however many workers there are: Ink clears the whole screen
 * when it must redraw more lines than the terminal has.
 */
export function UpView({ state, now }: { state: ViewState; now: number }) {
  return (
    <Box flexDirection="column">
      <Static items={state.settled}>
        {(item) =>
          'task' in item ? (
            <TaskLine key={item.key} task={item.task} now={now} />
          ) : (
            <Text key={item.key} color="yellow">{`! ${item.warning}`}</Text>
          )
        }
      </Static>
      <TaskList tasks={state.tasks.filter((task) => task.status !== 'done')} now={now} />
    </Box>
  );
}

/** An error, its details and hint: printed once, below the steps, at full width. */
export function ErrorReport({ error }: { error: { message: string; hint?: string; details?: string } }) {
  return (
    <Box flexDirection="column" marginTop={1}>
      <Text color="red">{`✗ ${error.message}`}</Text>
      {error.details ? <Text>{error.details}</Text> : null}
      {error.hint ? <Text dimColor>{`  hint: ${error.hint}`}</Text> : null}
    </Box>
  );
}

/**
 * Output to keep: rendered once at a width no terminal has, so Ink inserts no line breaks of its
 * own (a broken line in the Python snippet would not run), and written as it is.
 */
function printOnce(stdout: NodeJS.WriteStream, node: React.ReactElement): void {
  stdout.write(`${renderToString(node, { columns: 10_000 })}\n`);
}

/** Re-renders every tick so running steps show their time. */
function LiveView({ subscribe }: { subscribe: (listener: (state: ViewState) => void) => void }) {
  const [state, setState] = useState<ViewState>({ tasks: [], settled: [] });
  const [now, setNow] = useState(Date.now());
  useEffect(() => {
    subscribe(setState);
    const timer = setInterval(() => setNow(Date.now()), 100);
    return () => clearInterval(timer);
  }, [subscribe]);
  return <UpView state={state} now={now} />;
}

export interface UpViewHandle {
  progress(event: ProgressEvent): void;
  warn(message: string): void;
  /** Shows the error (message, hint) and stops rendering. */
  fail(error: { message: string; hint?: string; details?: string }): Promise<void>;
  /** Stops rendering the progress, and prints the summary below it. */
  finish(record: ClusterRecord): Promise<void>;
}

/**
 * Starts the live view. Ctrl-C is left to the terminal (no raw mode), so it reaches dcp as
 * SIGINT and the rollback shows here as it happens.
 */
export function startUpView(stdout: NodeJS.WriteStream = process.stdout): UpViewHandle {
  let state: ViewState = { tasks: [], settled: [] };
  let listener: ((state: ViewState) => void) | undefined;
  const update = (next: ViewState) => {
    state = next;
    listener?.(state);
  };
  const instance = render(<LiveView subscribe={(l) => ((listener = l), l(state))} />, {
    stdout,
    exitOnCtrlC: false,
    patchConsole: false,
  });
  const stop = async () => {
    // Let the last state reach the screen before Ink lets go of it.
    await new Promise((resolve) => setTimeout(resolve, 120));
    instance.unmount();
    await instance.waitUntilExit();
  };
  return {
    progress: (event) => update(applyToView(state, event, Date.now())),
    warn: (message) =>
      update({
        ...state,
        settled: [...state.settled, { key: `warning:${state.settled.length}`, warning: message }],
      }),
    fail: async (error) => {
      update({ ...state, tasks: failRunning(state.tasks, Date.now()) });
      await stop();
      printOnce(stdout, <ErrorReport error={error} />);
    },
    finish: async (record) => {
      await stop();
      printOnce(stdout, <Summary record={record} />);
    },
  };
}
