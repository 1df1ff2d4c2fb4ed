// The Notifications panel: a channel's health, what it takes, a delivery's status, and the
// channel table rendered (server-side rendering, no browser) with its failure visible.
import { describe, expect, it } from 'vitest'
import { createSSRApp, h } from 'vue'
import { renderToString } from 'vue/server-renderer'
import type { AlertChannel, AlertDelivery } from '../../api/types'
import NotificationChannels from './NotificationChannels.vue'
import { channelHealth, routeText, statusText } from './notifications'

const T = 1_795_651_200_000_000

function delivery(over: Partial<AlertDelivery> = {}): AlertDelivery {
  return {
    id: 1, channel: 'ops', channel_kind: 'webhook', kind: 'alarm', rule_ids: [3], subject: '[T3000] ACTIVE high: Boiler',
    status: 'sent', attempts: 1, last_error: null, created_us: T, finished_us: T + 1000, ...over,
  }
}

function channel(over: Partial<AlertChannel> = {}): AlertChannel {
  return {
    name: 'ops', kind: 'webhook', target: 'https://hooks.example.com', signed: true, rules: [], unmatched_rules: [], min_severity: 1,
    events: ['raised', 'level_changed', 'cleared'], max_per_minute: 0, max_per_hour: 0, sent: 0, failed: 0, dropped: 0,
    rate_limited: 0, queued: 0, held: 0, last_delivery: null, last_failure_us: null, last_error: null, ...over,
  }
}

describe('channel health', () => {
  it('says failing, retrying, losing messages, working or nothing yet', () => {
    expect(channelHealth(channel())).toEqual({ tone: '', text: 'Nothing sent yet' })
    expect(channelHealth(channel({ sent: 2, last_delivery: delivery() }))).toEqual({ tone: 'ok', text: 'Working' })
    expect(channelHealth(channel({ sent: 2, rate_limited: 1, last_delivery: delivery() })).text).toBe('Losing messages')
    expect(channelHealth(channel({ last_delivery: delivery({ status: 'retrying' }) })).tone).toBe('warn')
    expect(channelHealth(channel({ sent: 5, failed: 1, last_delivery: delivery({ status: 'failed' }) }))).toEqual({ tone: 'bad', text: 'Failing' })
    expect(channelHealth(channel({ last_delivery: delivery({ status: 'dropped' }) })).text).toBe('Queue full')
  })

  it('says which alarms a channel takes and a delivery status in words', () => {
    expect(routeText(channel())).toBe('every rule; any severity; raised, level changed, cleared')
    expect(routeText(channel({ rules: ['3', 'Boiler'], min_severity: 2, events: ['raised'], max_per_hour: 10 }))).toBe(
      'rules 3, Boiler; severe only; raised; at most 10/h',
    )
    expect(statusText(delivery({ status: 'failed', attempts: 4 }))).toEqual({ tone: 'bad', text: 'Failed after 4 attempts' })
    expect(statusText(delivery({ status: 'rate_limited' })).text).toBe('Not sent (rate limit)')
  })
})

type Props = InstanceType<typeof NotificationChannels>['$props']

async function render(props: Props): Promise<string> {
  return renderToString(createSSRApp({ render: () => h(NotificationChannels, props) }))
}

describe('NotificationChannels', () => {
  it('shows each channel with its counters and its latest error, and a test button for admins', async () => {
    const failing = channel({
      name: 'dead', sent: 1, failed: 2, dropped: 1, last_error: 'http://127.0.0.1:9: cannot connect', last_failure_us: T,
      last_delivery: delivery({ channel: 'dead', status: 'failed', attempts: 2, last_error: 'cannot connect' }),
    })
    const mail = channel({ name: 'on-call', kind: 'email', target: 'ops@example.com', signed: false, sent: 3, last_delivery: delivery() })
    const html = await render({ channels: [failing, mail], deliveries: [failing.last_delivery!], isAdmin: true, testing: null, tested: { 'on-call': 'Test message sent.' } })
    expect(html).toContain('data-channel="dead"')
    expect(html).toContain('1 / 2 / 1 / 0')
    expect(html).toContain('http://127.0.0.1:9: cannot connect')
    expect(html).toContain('Failed after 2 attempts')
    expect(html).toContain('e-mail')
    expect(html).toContain('Test message sent.')
    expect(html.match(/data-test="channel-test"/g)?.length).toBe(2)
    expect(html).toContain('Latest deliveries (1)')

    const viewer = await render({ channels: [mail], deliveries: [], isAdmin: false, testing: null, tested: {} })
    expect(viewer).not.toContain('channel-test')
  })

  it('explains how to add a channel when there is none', async () => {
    const html = await render({ channels: [], deliveries: [], isAdmin: false, testing: null, tested: {} })
    expect(html).toContain('No alert channels')
    expect(html).toContain('[[alerts.webhook]]')
  })
})
