// AlarmRules rendered on its own: its load error is shown with the shared error notice.
import { describe, expect, it } from 'vitest'
import { createSSRApp, h } from 'vue'
import { renderToString } from 'vue/server-renderer'
import { Problem } from '../../lib/errors'
import AlarmRules from './AlarmRules.vue'

describe('AlarmRules', () => {
  it('says when the rules could not be loaded', async () => {
    const error = new Problem('The server could not read the catalog.', '500 internal', true)
    const html = await renderToString(
      createSSRApp({ render: () => h(AlarmRules, { rules: null, loading: false, error }) }),
    )
    expect(html).toContain('Alarm rules could not be loaded')
    expect(html).toContain('The server could not read the catalog.')
    expect(html).not.toContain('<errornotice')
  })
})
